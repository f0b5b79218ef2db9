from churn.cli.commands import run

run()
