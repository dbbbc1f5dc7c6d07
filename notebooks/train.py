# Databricks notebook source
# MAGIC %md
# MAGIC # gridcast: train
# MAGIC
# MAGIC The point-in-time frame, a fitted forecaster, a registered model version.
# MAGIC
# MAGIC Calls `steps.train.main`, the function behind the wheel's `gridcast-train` entry
# MAGIC point, with this notebook's parameters: for running the step by hand in the workspace.
# MAGIC `%pip install ..` installs this bundle's project (the notebook's parent folder).

# COMMAND ----------

# MAGIC %pip install --quiet ..

# COMMAND ----------

dbutils.widgets.text("zone", "GR")
dbutils.widgets.text("horizon", "24")
dbutils.widgets.text("overrides", "storage=databricks source=live")

# COMMAND ----------

from steps import train

parameters = [f"zone={dbutils.widgets.get('zone')}", f"horizon={dbutils.widgets.get('horizon')}",
              dbutils.widgets.get("overrides")]
code = train.main(parameters)
if code:
    raise RuntimeError(f"train exited with code {code}; the error is in the output above")
dbutils.notebook.exit(str(code))
