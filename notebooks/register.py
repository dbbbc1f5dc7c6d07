# Databricks notebook source
# MAGIC %md
# MAGIC # gridcast: register
# MAGIC
# MAGIC The gate: the latest trained version against the baselines and the champion.
# MAGIC
# MAGIC Calls `steps.register.main`, the function behind the wheel's `gridcast-register` entry
# MAGIC point, with this notebook's parameters: for running the step by hand in the workspace.
# MAGIC `%pip install ..` installs this bundle's project (the notebook's parent folder).

# COMMAND ----------

# MAGIC %pip install --quiet ..

# COMMAND ----------

dbutils.widgets.text("zone", "GR")
dbutils.widgets.text("horizon", "24")
dbutils.widgets.text("overrides", "storage=databricks source=live")

# COMMAND ----------

from steps import register

parameters = [f"zone={dbutils.widgets.get('zone')}", f"horizon={dbutils.widgets.get('horizon')}",
              dbutils.widgets.get("overrides")]
code = register.main(parameters)
if code:
    raise RuntimeError(f"register exited with code {code}; the error is in the output above")
dbutils.notebook.exit(str(code))
