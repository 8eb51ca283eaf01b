"""`drive study`: the paper's question with intervals. A plan of jobs (train one model; evaluate one model)
over protocols × policies × training seeds (`study_plan`), each job a pure function writing files
(`jobs`), run by an executor (`drive.executor`: a local process pool or a Ray cluster), then statistics
over training seeds (`stats`, `tables`) and the report (`study_report`, `study_plots`). `runner` ties
them together.
"""
