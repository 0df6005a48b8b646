"""Running the course: notebooks (papermill), the main job, the doctor, and (later) the assignment tools."""
