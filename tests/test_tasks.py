"""tinytransformer/tasks: the bracket task's curriculum (the tasks' data and evaluation are exercised by
the demo scripts' tests, tests/test_demos.py)."""
import numpy as np

from tinytransformer.tasks.brackets import shortest_first


def test_shortest_first_grows_the_longest_length_to_the_end():
    lengths = np.array([2, 4, 6, 8, 10, 12])
    pools = [shortest_first(lengths, it, 600, 2, 12) for it in (0, 119, 120, 300, 599, 600, 3000)]
    assert [lengths[pool].max() for pool in pools] == [4, 4, 4, 6, 10, 12, 12]
    assert shortest_first(lengths, 0, 0, 2, 12).tolist() == list(range(6))      # 0: no curriculum
