"""`drive launch FILE.yaml`: named runs of several stages (record → train → eval → export → onboard → report),
skip-done and resumable (`runner`), and their summary report (`run_report`).
"""
