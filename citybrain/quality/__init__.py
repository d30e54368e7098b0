"""Quality checks with Great Expectations."""

import warnings

# Great Expectations imports pyspark when it is installed (the scale-out engine, docs/SCALE.md); pyspark
# then warns on every import that it does not yet support pandas 3. Our GX runs never use pyspark.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

# Examples kept per failed expectation: values of a column rule (GX's partial list), rows of a row rule.
EXAMPLES = 5
