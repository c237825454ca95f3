// Lint run by the test command (scripts/test.sh): typescript-eslint's type-checked rules that
// catch real bugs in async Node.js code. Zero warnings: a finding fails the suite.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['build/**', 'node_modules/**', '.cache/**', 'native/**'] },
  {
    files: ['**/*.ts', '**/*.cts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // node:test's test(), describe() and it() return promises the runner awaits itself
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unnecessary-condition': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', {
        argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none',
      }],
      // a closure made before a variable's one assignment reads it: it cannot be a const
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // an async function without await is how a synchronous step fulfils an async interface
      '@typescript-eslint/require-await': 'off',
      // tar headers, terminals and Go templates match control characters on purpose
      'no-control-regex': 'off',
    },
  },
  {
    // Tests reach into lookups with `?.` so that a missing entry fails an assertion with a message
    // instead of throwing a TypeError; and typescript-eslint does not apply noUncheckedIndexedAccess
    // to records with literal keys, so it would call many needed checks there unnecessary.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-unnecessary-condition': 'off' },
  },
  {
    // the launcher is CommonJS: it runs before the bundle, with require()
    files: ['**/*.cts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
)
