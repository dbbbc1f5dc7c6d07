# Databricks notebook source
# MAGIC %md
# MAGIC # gridcast: recommend
# MAGIC
# MAGIC The greenest windows of the champion's latest forecast.
# MAGIC
# MAGIC Calls `steps.recommend.main`, the function behind the wheel's `gridcast-recommend` entry
# MAGIC point, with this notebook's parameters: for running the step by hand in the workspace.
# MAGIC `%pip install ..` installs this bundle's project (the notebook's parent folder).

# COMMAND ----------

# MAGIC %pip install --quiet ..

# COMMAND ----------

dbutils.widgets.text("zone", "GR")
dbutils.widgets.text("horizon", "24")
dbutils.widgets.text("overrides", "storage=databricks source=live")

# COMMAND ----------

from steps import recommend

parameters = [f"zone={dbutils.widgets.get('zone')}", f"horizon={dbutils.widgets.get('horizon')}",
              dbutils.widgets.get("overrides")]
code = recommend.main(parameters)
if code:
    raise RuntimeError(f"recommend exited with code {code}; the error is in the output above")
dbutils.notebook.exit(str(code))
