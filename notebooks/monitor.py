# Databricks notebook source
# MAGIC %md
# MAGIC # gridcast: monitor
# MAGIC
# MAGIC The champion's past forecasts against what really happened. Calls `steps.monitor.main`, the
# MAGIC function behind the wheel's `gridcast-monitor` entry point, then publishes the status the
# MAGIC step tagged on its MLflow run (`monitor.status`: `ok`, `degraded` or `no_actuals_yet`) as
# MAGIC the task value `status`, which the monitoring job's `degraded` condition reads to start
# MAGIC retraining. A notebook because only notebooks can set task values.
# MAGIC `%pip install ..` installs this bundle's project (the notebook's parent folder).

# COMMAND ----------

# MAGIC %pip install --quiet ..

# COMMAND ----------

dbutils.widgets.text("zone", "GR")
dbutils.widgets.text("horizon", "24")
dbutils.widgets.text("overrides", "storage=databricks source=live")

# COMMAND ----------

import mlflow

from steps import monitor

parameters = [f"zone={dbutils.widgets.get('zone')}", f"horizon={dbutils.widgets.get('horizon')}",
              dbutils.widgets.get("overrides")]
code = monitor.main(parameters)
if code:
    raise RuntimeError(f"monitor exited with code {code}; the error is in the output above")
# The step's own run, read back from the tracking store it logged to.
status = mlflow.last_active_run().data.tags["monitor.status"]
dbutils.jobs.taskValues.set(key="status", value=status)
dbutils.notebook.exit(str(code))
