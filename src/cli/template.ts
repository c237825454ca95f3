/**
 * The part of Docker's `--format` that scripts use: `json`, `{{json .}}`, `{{.Field}}`,
 * `{{json .Field}}`, `\t`/`\n` escapes, and a `table` prefix for a header row.
 */
import { CairnError } from '../errors/index.js'
import { renderTable } from '../util/format.js'

export type Row = Record<string, string | number | boolean | object>

export function formatRows(format: string, rows: Row[], headers: Record<string, string> = {}): string {
  if (format === 'json') return rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '')
  let tmpl = format
  const table = tmpl.startsWith('table')
  if (table) tmpl = tmpl.slice(5).trimStart()
  tmpl = tmpl.replace(/\\t/g, '\t').replace(/\\n/g, '\n')
  const render = (row: Row): string =>
    tmpl.replace(/\{\{\s*(json\s+)?\.([A-Za-z0-9_]*)\s*\}\}/g, (_m, json: string | undefined, field: string) => {
      if (field === '') return JSON.stringify(row)
      if (!(field in row)) throw new CairnError('INVALID_ARGUMENT', `template: can't evaluate field ${field}`)
      const v = row[field]
      return json ? JSON.stringify(v) : typeof v === 'object' ? JSON.stringify(v) : String(v)
    })
  if (!table) return rows.map(render).join('\n') + (rows.length ? '\n' : '')
  const head = tmpl.replace(/\{\{\s*(?:json\s+)?\.([A-Za-z0-9_]*)\s*\}\}/g, (_m, f: string) => headers[f] ?? f.toUpperCase())
  const cells = [head, ...rows.map(render)].map((l) => l.split('\t'))
  return renderTable(cells[0] ?? [], cells.slice(1))
}
