import CPgQuery
