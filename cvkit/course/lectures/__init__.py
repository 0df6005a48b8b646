"""The lecture-notebook runner: execute notebooks with papermill in a chosen profile and report on them.

:mod:`cvkit.course.lectures.notebooks` runs and checks notebooks (``cvkit run``);
:mod:`cvkit.course.lectures.kernel_sockets` gives each kernel private Unix sockets.
"""
