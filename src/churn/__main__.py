from churn.cli import run

run()
