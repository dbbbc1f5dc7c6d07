# Databricks notebook source
# MAGIC %md
# MAGIC # gridcast: backtest
# MAGIC
# MAGIC Walk-forward backtest over `backtest.start` .. `backtest.end` into gold.backtest_results.
# MAGIC
# MAGIC Calls `steps.backtest.main`, the function behind the wheel's `gridcast-backtest` entry
# MAGIC point, with this notebook's parameters: for running the step by hand in the workspace.
# MAGIC `%pip install ..` installs this bundle's project (the notebook's parent folder).

# COMMAND ----------

# MAGIC %pip install --quiet ..

# COMMAND ----------

dbutils.widgets.text("zone", "GR")
dbutils.widgets.text("horizon", "24")
dbutils.widgets.text("overrides", "storage=databricks source=live")

# COMMAND ----------

from steps import backtest

parameters = [f"zone={dbutils.widgets.get('zone')}", f"horizon={dbutils.widgets.get('horizon')}",
              dbutils.widgets.get("overrides")]
code = backtest.main(parameters)
if code:
    raise RuntimeError(f"backtest exited with code {code}; the error is in the output above")
dbutils.notebook.exit(str(code))
