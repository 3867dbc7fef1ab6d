import { sql, type SQL } from "drizzle-orm/sql/sql";

/**
 * A column's own name, unqualified: where SQLite takes a bare name (the
 * column list of an INSERT, the left side of SET, RETURNING), since Drizzle
 * renders a column in a `sql` template as "table"."column".
 */
export function bare(column: { name: string }): SQL {
  return sql`${sql.identifier(column.name)}`;
}
