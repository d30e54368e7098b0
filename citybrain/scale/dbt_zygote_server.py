"""The dbt zygote's program (citybrain/scale/dbt_zygote.py): dbt imported by ``dbt_cli.import_dbt``, each
request run by ``dbt_cli.run_dbt``, as ``citybrain-dbt`` would run it. Arguments: the socket to listen on and
the process id of the run that started it."""

import sys

from citybrain.scale.dbt_cli import import_dbt, run_dbt
from citybrain.scale.dbt_zygote import serve

if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), import_dbt, run_dbt)
