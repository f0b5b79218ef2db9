from churn.cli import app

app(prog_name="churn")
