"""Running the course: the ``cvkit`` command's machinery, in two rooms.

* :mod:`cvkit.course.lectures`: the lecture-notebook runner (papermill, profiles, reports);
* :mod:`cvkit.course.assignments`: the assignment pipeline (release, validate, sandboxed autograding,
  feedback, publishing the student-facing course).

:mod:`cvkit.course.main_job` runs both for ``cvkit`` with no arguments; :mod:`cvkit.course.doctor`
checks a setup; :mod:`cvkit.course.paths` finds the course folder.
"""
