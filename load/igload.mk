# load/igload: issue 19's load generator (rules to come).
