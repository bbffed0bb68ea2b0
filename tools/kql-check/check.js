#!/usr/bin/env node
// Offline static check of KQL queries with Microsoft's own Kusto parser and
// semantic analyzer (npm @kusto/language-service-next, the engine behind the
// Azure Data Explorer / Log Analytics editors).
//
// Usage:
//   node tools/kql-check/check.js [--schemas DIR] [--json] FILE_OR_DIR...
//
// Every table described by DIR/*.json ({"table", "columns":[{"name","type"}]})
// becomes a table symbol in one database; each query is parsed and analyzed
// against it. Directories are walked recursively for *.kql files (the schemas
// directory, node_modules and dot-directories are skipped).
//
// Exit status: 0 no error-severity diagnostic, 1 at least one, 2 usage error
// (bad argument or path, unreadable/invalid schema, analyzer not installed).
//
// Caveat: the analyzer knows the Azure Data Explorer function set, which is
// close to but not identical with Log Analytics (e.g. workspace(), app(),
// resource() and _GetWatchlist() are reported as unknown functions, KS211).

'use strict';

const fs = require('fs');
const path = require('path');

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const PACKAGE_DIR = path.join(PROJECT_ROOT, 'node_modules', '@kusto', 'language-service-next');
const DEFAULT_SCHEMAS = path.join(PROJECT_ROOT, 'queries', 'schemas');
const SCHEMA_TYPES = new Set([
  'string', 'int', 'long', 'real', 'bool', 'datetime', 'dynamic', 'guid', 'timespan',
]);
const SKIP_DIRS = new Set(['node_modules']);

class UsageError extends Error {
  constructor(message, showUsage = false) {
    super(message);
    this.showUsage = showUsage;
  }
}

const USAGE = 'usage: node tools/kql-check/check.js [--schemas DIR] [--json] FILE_OR_DIR...';

function parseArgs(argv) {
  const opts = { schemas: DEFAULT_SCHEMAS, json: false, paths: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') {
      opts.json = true;
    } else if (arg === '--schemas') {
      if (i + 1 >= argv.length) throw new UsageError('--schemas needs a directory', true);
      opts.schemas = argv[++i];
    } else if (arg.startsWith('--schemas=')) {
      opts.schemas = arg.slice('--schemas='.length);
    } else if (arg === '-h' || arg === '--help') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else if (arg === '--') {
      opts.paths.push(...argv.slice(i + 1));
      break;
    } else if (arg.startsWith('-')) {
      throw new UsageError(`unknown option ${arg}`, true);
    } else {
      opts.paths.push(arg);
    }
  }
  if (opts.paths.length === 0) throw new UsageError('no FILE_OR_DIR given', true);
  return opts;
}

function loadKusto() {
  const bridge = path.join(PACKAGE_DIR, 'bridge.min.js');
  const kusto = path.join(PACKAGE_DIR, 'Kusto.Language.Bridge.min.js');
  for (const f of [bridge, kusto]) {
    if (!fs.existsSync(f)) {
      throw new UsageError(
        `Kusto analyzer not installed (${path.relative(process.cwd(), f) || f} missing); ` +
        'run `npm ci` in the project root');
    }
  }
  // Both files are Bridge.NET bundles: under CommonJS they attach the globals
  // `Bridge` and `Kusto` to `global` instead of exporting anything.
  require(bridge);
  require(kusto);
  if (!globalThis.Kusto || !globalThis.Kusto.Language) {
    throw new UsageError('loading the Kusto bridge did not define globalThis.Kusto.Language');
  }
  return globalThis.Kusto.Language;
}

function readSchemas(dir) {
  let entries;
  try {
    if (!fs.statSync(dir).isDirectory()) throw new Error('not a directory');
    entries = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  } catch (e) {
    throw new UsageError(`cannot read schemas directory ${dir}: ${e.message}`);
  }
  if (entries.length === 0) throw new UsageError(`no *.json schema in ${dir}`);
  const tables = [];
  const seen = new Set();
  for (const name of entries) {
    const file = path.join(dir, name);
    let doc;
    try {
      doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new UsageError(`cannot read schema ${file}: ${e.message}`);
    }
    if (!doc || typeof doc.table !== 'string' || !doc.table || !Array.isArray(doc.columns)) {
      throw new UsageError(`invalid schema ${file}: needs "table" (string) and "columns" (array)`);
    }
    if (seen.has(doc.table)) throw new UsageError(`table ${doc.table} defined twice (${file})`);
    seen.add(doc.table);
    const columns = doc.columns.map((c, i) => {
      if (!c || typeof c.name !== 'string' || !c.name || !SCHEMA_TYPES.has(c.type)) {
        throw new UsageError(
          `invalid column #${i} in ${file}: ${JSON.stringify(c)} ` +
          `(type must be one of ${[...SCHEMA_TYPES].join('|')})`);
      }
      return { name: c.name, type: c.type };
    });
    tables.push({ table: doc.table, columns });
  }
  return tables;
}

function buildGlobals(K, schemas) {
  const S = K.Symbols;
  const tables = schemas.map((t) => {
    const cols = t.columns.map(
      (c) => new S.ColumnSymbol(c.name, S.ScalarTypes.GetSymbol(c.type), null, null, null, null));
    return new S.TableSymbol.$ctor4(t.table, cols);
  });
  const db = new S.DatabaseSymbol.ctor('chargeback', tables);
  return K.GlobalState.Default.WithDatabase(db);
}

function collectFiles(inputs, schemasDir) {
  const files = [];
  const schemasReal = safeRealpath(schemasDir);
  const walk = (dir) => {
    const entries = fs.readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name.startsWith('.') || SKIP_DIRS.has(e.name)) continue;
        if (schemasReal && safeRealpath(full) === schemasReal) continue;
        walk(full);
      } else if (e.isFile() && e.name.endsWith('.kql')) {
        files.push(full);
      }
    }
  };
  for (const input of inputs) {
    let st;
    try {
      st = fs.statSync(input);
    } catch (e) {
      throw new UsageError(`no such file or directory: ${input}`);
    }
    if (st.isDirectory()) walk(input);
    else if (st.isFile()) files.push(input);
    else throw new UsageError(`not a file or directory: ${input}`);
  }
  return [...new Set(files)];
}

function safeRealpath(p) {
  try {
    return fs.realpathSync(p);
  } catch (e) {
    return null;
  }
}

function checkText(K, globals, file, text) {
  const S = K.Symbols;
  const code = K.KustoCode.ParseAndAnalyze(text, globals);
  const diagnostics = [];
  const list = code.GetDiagnostics();
  for (let i = 0; i < list.Count; i++) {
    const d = list.getItem(i);
    const line = { v: 0 };
    const col = { v: 0 };
    if (!code.TryGetLineAndOffset(d.Start, line, col)) {
      line.v = 1;
      col.v = 1;
    }
    diagnostics.push({
      file,
      line: line.v, // 1-based
      column: col.v, // 1-based
      severity: String(d.Severity || 'Error').toLowerCase(),
      code: d.Code || '',
      message: d.Message || '',
      start: d.Start,
      length: d.Length,
    });
  }
  // Only where the analyzer has not already reported something on the same expression.
  const overlaps = (f) => diagnostics.some((d) => d.start < f.start + f.length && f.start < d.start + d.length);
  diagnostics.push(...mixedComparisons(K, code, file).filter((f) => !overlaps(f)));
  const columns = [];
  const rt = code.ResultType;
  if (rt instanceof S.TableSymbol) {
    for (let i = 0; i < rt.Columns.Count; i++) {
      const c = rt.Columns.getItem(i);
      columns.push({ name: c.Name, type: c.Type ? c.Type.Name : 'unknown' });
    }
  }
  return { file, diagnostics, columns };
}

// The analyzer accepts `ResponseCode == "200"` (int vs string), but engines read it differently:
// Kusto converts, DuckDB refuses or compares as text. Report it as an error of our own (CB001).
const NUMERIC = new Set(['int', 'long', 'real', 'decimal']);
const COMPARISONS = new Set(['==', '!=', '<', '<=', '>', '>=']);

function mixedComparisons(K, code, file) {
  const found = [];
  K.Syntax.SyntaxElement.WalkNodes(code.Syntax, (node) => {
    if (!(node instanceof K.Syntax.BinaryExpression) || !COMPARISONS.has(node.Operator.Text)) return;
    const left = node.Left.ResultType ? node.Left.ResultType.Name : '';
    const right = node.Right.ResultType ? node.Right.ResultType.Name : '';
    const mixed = (NUMERIC.has(left) && right === 'string') || (left === 'string' && NUMERIC.has(right));
    if (!mixed) return;
    const line = { v: 1 };
    const col = { v: 1 };
    code.TryGetLineAndOffset(node.TextStart, line, col);
    found.push({
      file, line: line.v, column: col.v, severity: 'error', code: 'CB001',
      message: `comparison of ${left} with ${right} ('${node.Operator.Text}'): engines convert differently; compare values of one type`,
      start: node.TextStart, length: node.Width,
    });
  });
  return found;
}

function formatHuman(report) {
  const out = [];
  for (const f of report.files) {
    if (f.diagnostics.length === 0) out.push(`${f.file}: ok`);
    for (const d of f.diagnostics) {
      out.push(`${d.file}:${d.line}:${d.column}: ${d.severity} ${d.code} ${d.message}`);
    }
    const cols = f.columns.map((c) => `${c.name}:${c.type}`).join(', ');
    out.push(`  result: ${cols || '(no tabular result)'}`);
  }
  const errors = report.files.reduce(
    (n, f) => n + f.diagnostics.filter((d) => d.severity === 'error').length, 0);
  out.push(`${report.files.length} file(s) checked, ${errors} error(s)`);
  return out.join('\n') + '\n';
}

function main(argv) {
  let opts;
  let files;
  let K;
  let globals;
  try {
    opts = parseArgs(argv);
    const schemas = readSchemas(opts.schemas);
    files = collectFiles(opts.paths, opts.schemas);
    K = loadKusto();
    globals = buildGlobals(K, schemas);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`kql-check: ${e.message}\n${e.showUsage ? USAGE + '\n' : ''}`);
      return 2;
    }
    throw e;
  }
  if (files.length === 0) process.stderr.write('kql-check: warning: no .kql files found\n');

  const report = { files: [] };
  for (const file of files) {
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      process.stderr.write(`kql-check: cannot read ${file}: ${e.message}\n`);
      return 2;
    }
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    report.files.push(checkText(K, globals, file, text));
  }

  process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatHuman(report));
  const failed = report.files.some((f) => f.diagnostics.some((d) => d.severity === 'error'));
  return failed ? 1 : 0;
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}

module.exports = { main, checkText, loadKusto, buildGlobals, readSchemas };
