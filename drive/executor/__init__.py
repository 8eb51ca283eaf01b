"""Executors: who runs a plan of jobs (train one model, evaluate a group of episodes, export one model).
`tasks` holds what every executor takes and gives (`Task`, `Outcome`), `config` the strict
`ExecutorConfig` and `make_executor`; `local` is a process pool on this machine (the default), and
`ray_cluster` a Ray cluster (the optional `cluster` extra, imported there only).
"""
