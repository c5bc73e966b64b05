// Runs against the addon in $BOXSPEC_NODE_DIR (e.g. a copied dist/node) or the package dir.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const addonDir = process.env.BOXSPEC_NODE_DIR || resolve(here, '..')
const examplesDir = process.env.BOXSPEC_EXAMPLES || resolve(here, '../../../examples')

const require = createRequire(import.meta.url)
const boxspec = require(join(addonDir, 'index.js'))

const sample = readFileSync(join(examplesDir, 'box.json'), 'utf8')
const sampleDigest = readFileSync(join(examplesDir, 'box.digest'), 'utf8').trim()

test('version', () => {
  assert.equal(boxspec.version(), '0.1.0')
})

test('validate accepts the sample', () => {
  assert.equal(boxspec.validate(sample), undefined)
})

test('digest matches the committed digest', () => {
  assert.equal(boxspec.digest(sample), sampleDigest)
})

test('digest ignores key order and spelled-out defaults', () => {
  const a = '{"image":"alpine","memory":"1G"}'
  const b = '{"memory":1073741824,"cpus":1,"env":{},"image":"alpine"}'
  assert.equal(boxspec.digest(a), boxspec.digest(b))
})

test('normalize gives canonical JSON', () => {
  const out = boxspec.normalize(sample)
  const spec = JSON.parse(out)
  assert.deepEqual(Object.keys(spec), ['image', 'cpus', 'memory', 'env', 'mounts', 'ports'])
  assert.equal(spec.memory, 2 * 1024 ** 3)
  assert.equal(boxspec.normalize(out), out)
  assert.equal(
    boxspec.normalize('{"image":"a"}'),
    '{"image":"a","cpus":1,"memory":536870912,"env":{},"mounts":[],"ports":[]}',
  )
})

test('errors throw with the SpecError text', () => {
  const cases = [
    ['{"image":"a","cpus":0}', 'cpus: must be between 1 and 64, got 0'],
    [
      '{"image":"a","mounts":[{"source":"s","target":"/a"},{"source":"s","target":"rel"}]}',
      'mounts[1].target: must be an absolute path',
    ],
    ['{}', 'image: is required'],
  ]
  for (const [json, message] of cases) {
    for (const fn of [boxspec.validate, boxspec.digest, boxspec.normalize]) {
      assert.throws(() => fn(json), (err) => {
        assert.ok(err instanceof Error)
        assert.equal(err.message, message)
        return true
      })
    }
  }
})

test('invalid JSON reports its location', () => {
  assert.throws(() => boxspec.validate('{\n  "image": "a",\n    ]'), {
    message: /^invalid JSON at line 3 column 5: /,
  })
})
