"""The figures of the lessons: one module per lesson (lesson02.py draws lesson 02's), so that a lesson's
teaching cells hold the idea and its checks, and the Matplotlib code that draws it lives here.

Each function takes the arrays the lesson computed and returns a Matplotlib figure; the lesson passes it
to ``lesson.figure``, which saves it and shows it in the step that made it.
"""
