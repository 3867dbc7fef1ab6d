// Module types the Workers bundle relies on: wrangler.toml's `[[rules]] type
// = "Text"` turns an imported .sql file into its text.
declare module "*.sql" {
  const text: string;
  export default text;
}
