# Databricks notebook source
# MAGIC %md
# MAGIC # gridcast: main
# MAGIC
# MAGIC Ingest, medallion and features in one run.
# MAGIC
# MAGIC Calls `steps.main.main`, the function behind the wheel's `gridcast-main` entry
# MAGIC point, with this notebook's parameters: for running the step by hand in the workspace.
# MAGIC `%pip install ..` installs this bundle's project (the notebook's parent folder).

# COMMAND ----------

# MAGIC %pip install --quiet ..

# COMMAND ----------

dbutils.widgets.text("zone", "GR")
dbutils.widgets.text("horizon", "24")
dbutils.widgets.text("overrides", "storage=databricks source=live")

# COMMAND ----------

from steps import main

parameters = [f"zone={dbutils.widgets.get('zone')}", f"horizon={dbutils.widgets.get('horizon')}",
              dbutils.widgets.get("overrides")]
code = main.main(parameters)
if code:
    raise RuntimeError(f"main exited with code {code}; the error is in the output above")
dbutils.notebook.exit(str(code))
