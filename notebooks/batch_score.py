# Databricks notebook source
# MAGIC %md
# MAGIC # gridcast: batch_score
# MAGIC
# MAGIC The champion's forecasts into gold.carbon_intensity_predictions.
# MAGIC
# MAGIC Calls `steps.batch_score.main`, the function behind the wheel's `gridcast-batch-score` entry
# MAGIC point, with this notebook's parameters: for running the step by hand in the workspace.
# MAGIC `%pip install ..` installs this bundle's project (the notebook's parent folder).

# COMMAND ----------

# MAGIC %pip install --quiet ..

# COMMAND ----------

dbutils.widgets.text("zone", "GR")
dbutils.widgets.text("horizon", "24")
dbutils.widgets.text("overrides", "storage=databricks source=live")

# COMMAND ----------

from steps import batch_score

parameters = [f"zone={dbutils.widgets.get('zone')}", f"horizon={dbutils.widgets.get('horizon')}",
              dbutils.widgets.get("overrides")]
code = batch_score.main(parameters)
if code:
    raise RuntimeError(f"batch_score exited with code {code}; the error is in the output above")
dbutils.notebook.exit(str(code))
