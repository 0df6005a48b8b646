"""The assignment pipeline: author, release, validate, autograde, publish.

One module per step, readable top to bottom:

* :mod:`~cvkit.course.assignments.model`: what an assignment is on disk (``solutions/<a>/``, ``assignments/<a>/``), its settings and rules;
* :mod:`~cvkit.course.assignments.testcells`: the authoring format of test cells (``inputs``, ``answers``, ``checks``), split into the sandbox's half and the grader's;
* :mod:`~cvkit.course.assignments.nbgrader_course`, :mod:`~cvkit.course.assignments.release`: nbgrader's generate_assignment in a scratch course; ``cvkit release``;
* :mod:`~cvkit.course.assignments.submissions`, :mod:`~cvkit.course.assignments.repair`: finding and repairing the students' notebooks;
* :mod:`~cvkit.course.assignments.scan`: the static scan of student code (forbidden calls, tampering);
* :mod:`~cvkit.course.assignments.sandbox`, :mod:`~cvkit.course.assignments.runner`, :mod:`~cvkit.course.assignments.execute`: running a submission in a bubblewrap sandbox and collecting plain data;
* :mod:`~cvkit.course.assignments.grade`: one submission, step by step (:func:`~cvkit.course.assignments.grade.grade_submission`);
* :mod:`~cvkit.course.assignments.feedback`: what the student sees, scanned for leaks;
* :mod:`~cvkit.course.assignments.manual`, :mod:`~cvkit.course.assignments.merge`: free-response answers a person grades, and their points merged into final totals;
* :mod:`~cvkit.course.assignments.autograde`, :mod:`~cvkit.course.assignments.outputs`: a batch, with incremental, atomic outputs and LMS exports;
* :mod:`~cvkit.course.assignments.validate`, :mod:`~cvkit.course.assignments.stage`, :mod:`~cvkit.course.assignments.publish`, :mod:`~cvkit.course.assignments.commands`.
"""

from cvkit.course.assignments.model import (  # noqa: F401 - the names other modules import from here
    DATA_DIR,
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_MEMORY_LIMIT_GB,
    DEFAULT_TIME_LIMIT,
    PRIVATE_DIR,
    RELEASES,
    SOLUTIONS,
    Assignment,
    AssignmentError,
    GradedCell,
    Rule,
    cell_source,
    find_assignments,
    graded_cells,
    is_answer_cell,
    is_solution_cell,
    is_test_cell,
    load_assignment,
    nbgrader_meta,
    read_json,
)
