// The sample images in images/*.tar: valid OCI archives, rebuilt byte for byte by
// images/build.mjs, and programs that behave. node:wasi is only the oracle that runs them here.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WASI } from 'node:wasi';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tar from 'tar-stream';
import { compileNative, compileWasi, hasGcc, hasWasiClang, wasiCacheDir } from './helpers/compile-wasi.ts';

const imagesDir = fileURLToPath(new URL('../images/', import.meta.url));
const NAMES = ['hello', 'toolbox', 'bench-cpu', 'bench-fs'] as const;
const EPOCH_SECONDS = 1767225600;

interface TarEntry {
  name: string;
  type: string;
  mode: number;
  mtime: number;
  uid: number;
  gid: number;
  linkname?: string;
  data: Buffer;
}

function readTar(bytes: Buffer): Promise<TarEntry[]> {
  return new Promise((resolve, reject) => {
    const entries: TarEntry[] = [];
    const extract = tar.extract();
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        entries.push({
          name: header.name,
          type: header.type ?? 'file',
          mode: header.mode ?? 0,
          mtime: (header.mtime?.getTime() ?? -1) / 1000,
          uid: header.uid ?? -1,
          gid: header.gid ?? -1,
          linkname: header.linkname ?? undefined,
          data: Buffer.concat(chunks),
        });
        next();
      });
      stream.resume();
    });
    extract.on('finish', () => resolve(entries));
    extract.on('error', reject);
    extract.end(bytes);
  });
}

const sha256 = (data: Uint8Array) => 'sha256:' + createHash('sha256').update(data).digest('hex');

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

interface OpenedImage {
  files: Map<string, TarEntry>;
  entries: TarEntry[];
  index: { schemaVersion: number; mediaType: string; manifests: Descriptor[] };
  manifestDesc: Descriptor;
  manifest: { schemaVersion: number; mediaType: string; config: Descriptor; layers: Descriptor[] };
  config: {
    os: string;
    architecture: string;
    config: { Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string };
    rootfs: { type: string; diff_ids: string[] };
    history: unknown[];
  };
  layerGzip: Buffer;
  layerEntries: TarEntry[];
}

/** Reads an OCI archive and checks every blob's size and digest on the way down. */
async function openArchive(path: string): Promise<OpenedImage> {
  const entries = await readTar(readFileSync(path));
  const files = new Map(entries.filter((e) => e.type === 'file').map((e) => [e.name, e]));
  const blob = (d: Descriptor): Buffer => {
    const [algorithm, hex] = d.digest.split(':');
    expect(algorithm).toBe('sha256');
    const entry = files.get(`blobs/sha256/${hex}`);
    if (!entry) throw new Error(`blob ${d.digest} missing from ${path}`);
    expect(entry.data.length).toBe(d.size);
    expect(sha256(entry.data)).toBe(d.digest);
    return entry.data;
  };
  const index = JSON.parse(files.get('index.json')!.data.toString());
  expect(index.manifests).toHaveLength(1);
  const manifestDesc: Descriptor = index.manifests[0];
  const manifest = JSON.parse(blob(manifestDesc).toString());
  const config = JSON.parse(blob(manifest.config).toString());
  expect(manifest.layers).toHaveLength(1);
  const layerGzip = blob(manifest.layers[0]);
  const layerTar = gunzipSync(layerGzip);
  expect(config.rootfs.diff_ids).toEqual([sha256(layerTar)]);
  return { files, entries, index, manifestDesc, manifest, config, layerGzip, layerEntries: await readTar(layerTar) };
}

function expectDeterministicEntries(entries: TarEntry[]) {
  const names = entries.map((e) => e.name.replace(/\/$/, ''));
  expect(names).toEqual([...names].sort());
  for (const e of entries) {
    expect(e.mtime, e.name).toBe(EPOCH_SECONDS);
    expect([e.uid, e.gid], e.name).toEqual([0, 0]);
    expect(e.name.startsWith('/') || e.name.split('/').includes('..'), e.name).toBe(false);
  }
}

describe.each(NAMES)('images/%s.tar', (name) => {
  let image: OpenedImage;
  beforeAll(async () => {
    image = await openArchive(join(imagesDir, `${name}.tar`));
  });

  it('is an OCI layout with one wasi/wasm manifest named NAME:latest', () => {
    expect(JSON.parse(image.files.get('oci-layout')!.data.toString())).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(image.index.schemaVersion).toBe(2);
    expect(image.index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(image.manifestDesc.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(image.manifestDesc.platform).toEqual({ architecture: 'wasm', os: 'wasi' });
    expect(image.manifestDesc.annotations?.['org.opencontainers.image.ref.name']).toBe(`${name}:latest`);
    expect(image.manifest.schemaVersion).toBe(2);
    expect(image.manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(image.manifest.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
    expect(image.manifest.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
  });

  it('has a runnable config and nothing but referenced blobs', () => {
    const { config, manifest, manifestDesc } = image;
    expect([config.os, config.architecture]).toEqual(['wasi', 'wasm']);
    expect(config.rootfs.type).toBe('layers');
    expect(config.history).toHaveLength(1);
    expect(config.config.Env).toContain('PATH=/bin');
    expect(config.config.WorkingDir).toBe('/');
    expect(config.config.Entrypoint ?? config.config.Cmd).toBeTruthy();
    const referenced = [manifestDesc, manifest.config, ...manifest.layers].map((d) => `blobs/sha256/${d.digest.slice(7)}`);
    expect([...image.files.keys()].sort()).toEqual(['index.json', 'oci-layout', ...referenced].sort());
  });

  it('is deterministic: sorted entries, fixed mtimes and owners, gzip without a timestamp', () => {
    expectDeterministicEntries(image.entries);
    expectDeterministicEntries(image.layerEntries);
    expect(image.layerGzip.readUInt32LE(4)).toBe(0); // gzip MTIME
  });

  it('runs a WASI module its config points at', () => {
    const { config, layerEntries } = image;
    const command = (config.config.Entrypoint ?? config.config.Cmd)![0]!;
    const byName = new Map(layerEntries.map((e) => [e.name, e]));
    let entry = byName.get(command.slice(1));
    if (entry?.type === 'symlink') entry = byName.get(`bin/${entry.linkname}`);
    expect(entry?.type).toBe('file');
    expect(entry!.data.subarray(0, 4)).toEqual(Buffer.from([0x00, 0x61, 0x73, 0x6d]));
    expect(entry!.mode & 0o111).not.toBe(0);
  });
});

it('keeps the toolbox layer small (< 200 KB gzipped)', async () => {
  const image = await openArchive(join(imagesDir, 'toolbox.tar'));
  expect(image.layerGzip.length).toBeLessThan(200_000);
  const tmp = image.layerEntries.find((e) => e.name === 'tmp/');
  expect(tmp?.mode).toBe(0o1777);
});

describe('images/build.mjs', () => {
  const reason = hasWasiClang() ? '' : 'clang-14 with wasi-libc is not installed';
  it.skipIf(!!reason)(`rebuilds the committed archives byte for byte${reason ? ` (skipped: ${reason})` : ''}`, () => {
    const out = mkdtempSync(join(tmpdir(), 'wasmbox-images-test-'));
    try {
      execFileSync(process.execPath, [join(imagesDir, 'build.mjs'), '--out', out], { stdio: 'pipe' });
      for (const name of NAMES) {
        const rebuilt = readFileSync(join(out, `${name}.tar`));
        const committed = readFileSync(join(imagesDir, `${name}.tar`));
        expect(sha256(rebuilt), `${name}.tar differs from a fresh build`).toBe(sha256(committed));
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
  if (reason) console.log(`images.test.ts: determinism check skipped: ${reason}`);
});

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a module under node:wasi with `root` as its `/`. */
async function runWasi(module: Uint8Array, root: string, args: string[], env: Record<string, string>, stdin = ''): Promise<RunResult> {
  const io = mkdtempSync(join(tmpdir(), 'wasmbox-images-io-'));
  writeFileSync(join(io, 'stdin'), stdin);
  const fds = [openSync(join(io, 'stdin'), 'r'), openSync(join(io, 'stdout'), 'w'), openSync(join(io, 'stderr'), 'w')] as const;
  try {
    const wasi = new WASI({ version: 'preview1', args, env, preopens: { '/': root }, returnOnExit: true, stdin: fds[0], stdout: fds[1], stderr: fds[2] });
    const compiled = await WebAssembly.compile(module as Uint8Array<ArrayBuffer>);
    const instance = await WebAssembly.instantiate(compiled, wasi.getImportObject() as WebAssembly.Imports);
    const code = wasi.start(instance);
    return { code, stdout: readFileSync(join(io, 'stdout'), 'utf8'), stderr: readFileSync(join(io, 'stderr'), 'utf8') };
  } finally {
    for (const fd of fds) closeSync(fd);
    rmSync(io, { recursive: true, force: true });
  }
}

/** Unpacks an image's layer with `tar` into a fresh directory: a rootfs for node:wasi. */
async function unpack(name: string): Promise<string> {
  const image = await openArchive(join(imagesDir, `${name}.tar`));
  const dir = mkdtempSync(join(tmpdir(), `wasmbox-rootfs-${name}-`));
  const layer = join(dir, 'layer.tar.gz');
  writeFileSync(layer, image.layerGzip);
  execFileSync('tar', ['-xzf', layer, '-C', dir, '--no-same-owner']);
  rmSync(layer);
  return dir;
}

describe('hello', () => {
  let root: string;
  let wasm: Uint8Array;
  beforeAll(async () => {
    root = await unpack('hello');
    wasm = readFileSync(join(root, 'hello.wasm'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('prints its greeting, cwd, argv and env, and exits with --exit N', async () => {
    const r = await runWasi(wasm, root, ['/hello.wasm', 'one', 'two words', 'ünï', '--exit', '3'], { GREETING: 'hi there', FOO: 'bar=baz' });
    expect(r.code).toBe(3);
    expect(r.stdout.split('\n')).toEqual([
      'hi there', 'cwd: /', 'argc: 6',
      'argv[0]: /hello.wasm', 'argv[1]: one', 'argv[2]: two words', 'argv[3]: ünï', 'argv[4]: --exit', 'argv[5]: 3',
      'env: GREETING=hi there', 'env: FOO=bar=baz', '',
    ]);
  });

  it('writes to stderr, copies stdin, and enters PWD', async () => {
    const r = await runWasi(wasm, root, ['hello', '--stderr', 'oops', '--stdin'], { PWD: '/' }, 'piped in\n');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('oops\n');
    expect(r.stdout.endsWith('env: PWD=/\npiped in\n')).toBe(true);
    expect(r.stdout).toContain('hello from wasmbox\ncwd: /\n');
  });
});

describe('toolbox', () => {
  let root: string;
  let wasm: Uint8Array;
  const env = { PATH: '/bin', HOME: '/root' };
  const sh = (script: string, extraEnv: Record<string, string> = {}, stdin = '') =>
    runWasi(wasm, root, ['sh', '-c', script], { ...env, ...extraEnv }, stdin);

  beforeAll(async () => {
    root = await unpack('toolbox');
    wasm = readFileSync(join(root, 'bin/toolbox'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('links every applet it has, and only those, into /bin', async () => {
    const r = await runWasi(wasm, root, ['toolbox', '--list'], env);
    const linked = readdirSync(join(root, 'bin')).filter((n) => n !== 'toolbox');
    for (const n of linked) expect(readlinkSync(join(root, 'bin', n))).toBe('toolbox');
    expect(r.stdout.trim().split('\n').sort()).toEqual(linked.sort());
  });

  it('runs the issue example: ls -l /; echo hi > /tmp/x; cat /tmp/x', async () => {
    const r = await sh('ls -l /; echo hi > /tmp/x; cat /tmp/x');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('hi');
    for (const dir of ['bin', 'etc', 'root', 'tmp']) expect(lines.some((l) => /^d[rwxtT-]{9} /.test(l) && l.endsWith(` ${dir}`)), dir).toBe(true);
    expect(readFileSync(join(root, 'tmp/x'), 'utf8')).toBe('hi\n');
  });

  it('runs pipelines and redirections', async () => {
    const r = await sh([
      "printf 'pear\\napple\\npear\\nfig\\n' > /tmp/fruit",
      'sort /tmp/fruit | uniq -c | sort -rn | head -n 1',
      'cat < /tmp/fruit | grep -c pear',
      'grep -v pear /tmp/fruit > /tmp/out; echo sep >> /tmp/out; cat /tmp/out',
      'ls /nonexistent 2> /tmp/err; echo "ls=$?"; wc -l < /tmp/err',
      'ls /nonexistent 2>&1 | grep -c nonexistent',
      'echo to-stderr 1>&2',
      'seq 5 | tail -n 2 | tee /tmp/tee | wc -l; cat /tmp/tee',
      'grep -n "^p.a" /tmp/fruit | head -1',
      'echo abc | grep -E "x|b" && echo abc | grep -q z || echo "no z"',
    ].join('\n'));
    expect(r.stdout).toBe(['      2 pear', '2', 'apple', 'fig', 'sep', 'ls=2', '1', '1', '2', '4', '5', '1:pear', 'abc', 'no z', ''].join('\n'));
    expect(r.stderr).toBe('to-stderr\n');
    expect(r.code).toBe(0);
  });

  it('redirects to /dev/null even when the runtime provides no /dev', async () => {
    const r = await sh('echo hidden > /dev/null; ls /nope 2>/dev/null || echo quiet; wc -c < /dev/null');
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'quiet\n0\n', '']);
    expect(existsSync(join(root, 'dev'))).toBe(false);
  });

  it('expands variables, quotes and command substitutions, and keeps exit statuses', async () => {
    const r = await sh([
      'false && echo no || echo "yes $?"',
      'true || echo no; echo "t=$?"',
      'nosuchcmd; echo "nf=$?"',
      "X='a  b'; echo \"$X\" $X '$X' ${X}x ${UNSET:-dflt} ${#X}",
      'echo "$(echo inner | wc -c)" `echo tick`',
      "sh -c 'exit 5'; echo \"sub=$?\"",
      '! false; echo "neg=$?"',
      'Y=1 env | grep -c "^Y="; echo "after=${Y:-unset}"',
      'echo -n no-newline; echo " $GREETING"',
      'echo \\$HOME "\\"q\\"" a\\ b',
      'exit 9; echo unreachable',
    ].join('; '), { GREETING: 'g' });
    expect(r.stdout).toBe([
      'yes 1', 't=0', 'nf=127', 'a  b a b $X a bx dflt 4', '6 tick', 'sub=5', 'neg=0', '1', 'after=unset',
      'no-newline g', '$HOME "q" a b', '',
    ].join('\n'));
    expect(r.stderr).toBe('sh: nosuchcmd: not found\n');
    expect(r.code).toBe(9);
  });

  it('runs compound commands, loops with break/continue, arithmetic and ${VAR#pat}', async () => {
    const r = await sh([
      'for i in 1 2 3; do echo "i=$i"; done',
      'n=0; while [ $n -lt 3 ]; do n=$((n + 1)); done; echo "n=$n"',
      'until test -e /tmp/flag; do touch /tmp/flag; echo made; done',
      'if false; then echo no; elif [ -f /tmp/flag ]; then echo elif; else echo else; fi',
      'if true; then',
      '  echo multi-line',
      'fi',
      'for i in 1 2 3; do for j in a b; do [ $j = b ] && continue 2; [ $i = 3 ] && break 2; echo $i$j; done; done',
      '{ echo g1; echo g2; } | wc -l',
      '(cd /etc; pwd; exit 4); echo "sub=$? $(pwd)"',
      'for w in $(seq 3); do echo $w; done > /tmp/loop; cat /tmp/loop | tail -n 1',
      'echo $(( (2 + 3) * 4 % 7 )) $((10 / 3)) $((-5 + 2)) $((1 < 2 && 3 >= 3))',
      'f=/a/b/c.tar.gz; echo ${f#*/} ${f##*/} ${f%.*} ${f%%.*}',
      'while false; do :; done; echo "w=$?"',
    ].join('\n'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe([
      'i=1', 'i=2', 'i=3', 'n=3', 'made', 'elif', 'multi-line', '1a', '2a', '2', '/etc', 'sub=4 /', '3',
      '6 3 -3 1', 'a/b/c.tar.gz c.tar.gz /a/b/c.tar /a/b/c', 'w=0', '',
    ].join('\n'));
    const bad = await sh('if true; then echo x');
    expect([bad.code, bad.stdout]).toEqual([2, '']);
    expect(bad.stderr).toContain('syntax error');
  });

  it('has here-documents, case, set -e/-u/-x/-o pipefail, set -- and shift', async () => {
    writeFileSync(join(root, 'tmp/features.sh'), [
      'X=world',
      'cat <<EOF',
      'hello $X',
      '  $(echo sub) \\$HOME',
      'EOF',
      "cat <<'EOF' | wc -l",
      'raw $X',
      'EOF',
      'cat <<-EOF',
      '\ttabbed $X',
      '\tEOF',
      'for f in a.txt b.sh c; do',
      '  case $f in',
      '    *.txt) echo "$f text";;',
      '    *.sh|*.bash) echo "$f script" ;;',
      '    *) echo "$f other";;',
      '  esac',
      'done',
      'set -- p q r; echo "$# $1 $3"; shift; echo "$# $1"',
      'set -- "a b" "" c; for a in "$@"; do echo "[$a]"; done; printf "<%s>\\n" "x$@y"; set --; echo "none" "$@"',
      'set -o pipefail; false | true; echo "pf=$?"; set +o pipefail; false | true; echo "nopf=$?"',
      "sh -c 'set -e; echo before; false; echo after'; echo \"e=$?\"",
      "sh -c 'set -e; if false; then :; fi; false || true; ! false; echo survived'",
      "sh -c 'set -u; echo ${UNSETVAR:-dflt}; echo $UNSETVAR; echo notreached'; echo \"u=$?\"",
      "sh -c 'set -x; echo traced'",
      '',
    ].join('\n'));
    const r = await runWasi(wasm, root, ['sh', '/tmp/features.sh'], env);
    expect(r.stdout).toBe([
      'hello world', '  sub $HOME', '1', 'tabbed world', 'a.txt text', 'b.sh script', 'c other',
      '3 p r', '2 q', '[a b]', '[]', '[c]', '<xa b>', '<>', '<cy>', 'none', 'pf=1', 'nopf=0', 'before', 'e=1', 'survived', 'dflt', 'u=2', 'traced', '',
    ].join('\n'));
    expect(r.stderr).toBe('sh: UNSETVAR: parameter not set\n+ echo traced\n');
    expect(r.code).toBe(0);
  });

  it('has functions with arguments and return, recursion bounded', async () => {
    const r = await sh([
      'greet() { echo "hi $1 ($#) $0"; }',
      'greet bob x; greet',
      'fact() { if [ $1 -le 1 ]; then echo 1; return; fi; echo $(( $1 * $(fact $(( $1 - 1 ))) )); }',
      'fact 5',
      'f() {',
      '  for i in 1 2 3; do [ $i = 2 ] && return 7; echo "f$i"; done',
      '}',
      'f; echo "ret=$?"',
      'ls() { echo "shadowed ls"; }; ls',
      'rec() { rec; }; rec; echo "rec=$?"',
    ].join('\n'), {}, '');
    expect(r.stdout).toBe(['hi bob (2) sh', 'hi  (0) sh', '120', 'f1', 'ret=7', 'shadowed ls', 'rec=2', ''].join('\n'));
    expect(r.stderr).toBe('sh: rec: function calls nested too deeply\n');
  });

  it('has text tools: cut, tr, xargs, date, uname, hostname, which, command -v', async () => {
    const r = await sh([
      'echo "a:b:c:d" | cut -d: -f2,4; echo abcdef | cut -c 2-4',
      'echo Hello World | tr a-z A-Z; echo hello | tr -d l; echo "a   b" | tr -s " "',
      'printf "1 2 3 4 5" | xargs -n 2 echo',
      'date -d @86400 +%Y-%m-%dT%H:%M:%S; uname -s; HOSTNAME=box hostname; hostname',
      'which ls nothere; echo "which=$?"; command -v cd cat; type sh',
    ].join('\n'));
    expect(r.stdout).toBe([
      'b:d', 'bcd', 'HELLO WORLD', 'heo', 'a b', '1 2', '3 4', '5',
      '1970-01-02T00:00:00', 'WASI', 'box', 'toolbox',
      '/bin/ls', 'which=1', 'cd', '/bin/cat', '/bin/sh', '',
    ].join('\n'));
  });

  it('has sed: s///g with groups and &, addresses, ranges, d, p, q, y, -n, -e, -i', async () => {
    const r = await sh([
      'echo hello world | sed "s/o/0/g"; echo hello world | sed -E "s/(h)(e)/\\2\\1/"; echo aaa | sed s/a/b/2',
      'echo abc | sed "s/x*/-/g"; seq 5 | sed -n 2,4p; seq 5 | sed "/2/,/4/d"; seq 5 | sed -n "\\$p"',
      'seq 3 | sed -e s/1/one/ -e 2q; echo "a/b" | sed "s|/|_|"; echo hello | sed y/hel/HEL/',
      'seq 3 > /tmp/sed.txt; sed -i "s/2/TWO/; 3d" /tmp/sed.txt; cat /tmp/sed.txt; echo "x y" | sed "s/x/[&]/"',
    ].join('\n'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe([
      'hell0 w0rld', 'ehllo world', 'aba', '-a-b-c-', '2', '3', '4', '1', '5', '5',
      'one', '2', 'a_b', 'HELLo', '1', 'TWO', '[x] y', '',
    ].join('\n'));
  });

  it('works on files: cd, mkdir -p, touch, cp -r, mv, ln -s, find, stat, rm -r, test', async () => {
    const r = await sh([
      'cd /tmp && mkdir -p work/a/b && cd work && pwd',
      'echo data > a/b/f.txt; touch a/empty; cp -r a c; mv c/b/f.txt c/g.txt; ln -s g.txt c/link',
      'find . -type f | sort; find . -name "*.txt"',
      'stat -c "%n %s %F" c/g.txt c/link; stat -c "%n %F" a/b',
      'cat c/link; test -f c/g.txt && test -d a/b && test ! -e c/b/f.txt && echo tests-ok',
      '[ "$(cat a/b/f.txt)" = data ] && echo bracket-ok',
      'rm -r a; rmdir c/b; ls; ls -a c',
      'basename /x/y/z.txt .txt; dirname /x/y/z.txt; echo *',
      'rm /tmp/work/missing; echo "rm=$?"',
    ].join('\n'));
    expect(r.stdout).toBe([
      '/tmp/work',
      './a/b/f.txt', './a/empty', './c/empty', './c/g.txt',
      './a/b/f.txt', './c/g.txt',
      'c/g.txt 5 regular file', 'c/link 5 symbolic link', 'a/b directory',
      'data', 'tests-ok', 'bracket-ok',
      'c', '.', '..', 'empty', 'g.txt', 'link',
      'z', '/x/y', 'c',
      'rm=1', '',
    ].join('\n'));
    expect(r.stderr).toMatch(/^rm: can't remove '\/tmp\/work\/missing': No such file or directory\n$/);
    expect(readFileSync(join(root, 'tmp/work/c/g.txt'), 'utf8')).toBe('data\n');
    expect(existsSync(join(root, 'tmp/work/a'))).toBe(false);
  });

  it('refuses to copy a directory into itself or a file onto itself', async () => {
    const r = await sh('mkdir -p /tmp/cpd/x; echo keep > /tmp/cpd/f; cp -r /tmp/cpd /tmp/cpd/inner; echo "dir=$?"; cp /tmp/cpd/f /tmp/cpd/f; echo "file=$?"; cat /tmp/cpd/f');
    expect(r.stdout).toBe('dir=1\nfile=1\nkeep\n');
    expect(r.stderr).toContain('into itself');
    expect(r.stderr).toContain('are the same file');
  });

  it('stops nesting too deep for its stack with a clean error', async () => {
    const deep = await sh(`${'('.repeat(5000)}echo deep${')'.repeat(5000)}`);
    expect([deep.code, deep.stderr]).toEqual([2, 'sh: syntax error: commands nested too deeply\n']);
    const subst = await sh(`echo ${'$(echo '.repeat(200)}x${')'.repeat(200)}; echo after`);
    expect(subst.stderr).toContain('command substitutions nested too deeply');
    expect(subst.stdout.endsWith('after\n')).toBe(true);
    const within = await sh(`${'('.repeat(50)}echo fine${')'.repeat(50)}`);
    expect([within.code, within.stdout]).toEqual([0, 'fine\n']);
  });

  it('starts in $PWD, runs script files with arguments, and reads commands from stdin', async () => {
    const inTmp = await runWasi(wasm, root, ['sh', '-c', 'pwd; echo rel > rel.txt'], { ...env, PWD: '/tmp' });
    expect(inTmp.stdout).toBe('/tmp\n');
    expect(readFileSync(join(root, 'tmp/rel.txt'), 'utf8')).toBe('rel\n');

    writeFileSync(join(root, 'tmp/script.sh'), '# a comment\necho "$0 $1 $#"\ncat /etc/hostname |\n  wc -c\nexit 4\necho never\n');
    const script = await runWasi(wasm, root, ['sh', '/tmp/script.sh', 'first', 'second'], env);
    expect([script.code, script.stdout]).toEqual([4, '/tmp/script.sh first 2\n8\n']);

    const piped = await runWasi(wasm, root, ['sh'], env, 'echo one\nX=2 &&\n  echo "two $X"\necho "three\nlines"\n');
    expect([piped.code, piped.stdout]).toEqual([0, 'one\ntwo 2\nthree\nlines\n']);
  });

  it('dispatches on argv[0] and on `toolbox NAME`', async () => {
    const ls = await runWasi(wasm, root, ['/bin/ls', '/etc'], env);
    expect(ls.stdout).toBe('hostname\nmotd\n');
    const cat = await runWasi(wasm, root, ['toolbox', 'cat', '/etc/hostname'], env);
    expect(cat.stdout).toBe('toolbox\n');
    const missing = await runWasi(wasm, root, ['frobnicate'], env);
    expect([missing.code, missing.stderr]).toEqual([127, 'frobnicate: not found\n']);
    const syntax = await sh('echo a &&');
    expect(syntax.code).toBe(2);
    expect(syntax.stderr).toContain('syntax error');
  });
});

describe('bench programs', () => {
  it('bench-cpu prints the sha256 of N MiB of its pattern', async () => {
    const root = await unpack('bench-cpu');
    try {
      const r = await runWasi(readFileSync(join(root, 'bench-cpu.wasm')), root, ['bench-cpu', '3'], {});
      const block = Buffer.alloc(1 << 20);
      for (let i = 0; i < block.length; i++) block[i] = i & 0xff;
      const h = createHash('sha256');
      for (let i = 0; i < 3; i++) h.update(block);
      expect([r.code, r.stdout]).toEqual([0, `sha256 ${h.digest('hex')} 3MiB\n`]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('bench-fs creates, stats, lists, reads, renames and removes N files', async () => {
    const root = await unpack('bench-fs');
    try {
      const n = 40;
      const r = await runWasi(readFileSync(join(root, 'bench-fs.wasm')), root, ['bench-fs', String(n)], {});
      let bytes = 0;
      for (let i = 0; i < n; i++) bytes += `file ${i} of ${n}: the quick brown fox jumps over the lazy dog\n`.length;
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(r.stdout).toBe(`created ${n} stat ${n} listed ${n} read ${bytes} bytes renamed ${n} unlinked ${n}\n`);
      expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  const gccMissing = hasGcc() ? '' : 'gcc is not installed';
  it.skipIf(!!gccMissing)(`the same C builds natively with gcc and agrees${gccMissing ? ` (skipped: ${gccMissing})` : ''}`, async () => {
    const bin = await compileNative(join(imagesDir, 'src/bench-cpu.c'));
    const root = await unpack('bench-cpu');
    try {
      const native = execFileSync(bin, ['2'], { encoding: 'utf8' });
      const wasm = await runWasi(readFileSync(join(root, 'bench-cpu.wasm')), root, ['bench-cpu', '2'], {});
      expect(wasm.stdout).toBe(native);
      const tools = join(root, 'toolbox');
      const srcs = ['toolbox.c', 'shell.c', 'fs-tools.c', 'text-tools.c', 'misc-tools.c', 'sed.c'].map((f) => join(imagesDir, 'src/toolbox', f));
      execFileSync('gcc', ['-O2', '-Wall', '-o', tools, ...srcs]);
      expect(execFileSync(tools, ['sh', '-c', 'seq 3 | sort -r | head -n 2 | wc -l'], { encoding: 'utf8' })).toBe('2\n');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('compileWasi helper', () => {
  const reason = hasWasiClang() ? '' : 'clang-14 with wasi-libc is not installed';
  it.skipIf(!!reason)(`compiles C to a WASI module, cached by content${reason ? ` (skipped: ${reason})` : ''}`, async () => {
    // A fresh token makes the first call compile and the second one hit the cache.
    const token = createHash('sha256').update(String(process.hrtime.bigint())).digest('hex').slice(0, 12);
    const source = `#include <stdio.h>\n/* ${token} */\nint main(int argc, char **argv) { printf("n=%d %s\\n", argc, argv[1]); return 7; }\n`;
    const first = await compileWasi(source);
    const second = await compileWasi(source);
    expect(second).toEqual(first);
    expect(readdirSync(wasiCacheDir).filter((f) => f.endsWith('.wasm')).length).toBeGreaterThan(0);
    const dir = mkdtempSync(join(tmpdir(), 'wasmbox-compile-'));
    try {
      const r = await runWasi(first, dir, ['p', 'arg'], {});
      expect([r.code, r.stdout]).toEqual([7, 'n=2 arg\n']);
      await expect(compileWasi('int main(void) { return undefined_symbol; }')).rejects.toThrow(/clang-14 failed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
