import type { Command } from 'commander';
import { print, storeFor } from '../program.ts';
import type { StoredImage } from '../../loader/store/layout-store.ts';

export function register(program: Command): void {
  program
    .command('images')
    .alias('image-ls')
    .description('List images in the store')
    .argument('[repository]', 'only images of this repository (NAME or NAME:TAG)')
    .option('-q, --quiet', 'only show image IDs')
    .option('--no-trunc', "don't truncate image IDs")
    .option('--format <format>', "'table' (default) or 'json' (one JSON object per line)", 'table')
    .action(async (repository: string | undefined, o: { quiet?: boolean; trunc: boolean; format: string }, cmd: Command) => {
      if (o.format !== 'table' && o.format !== 'json') {
        const { SandboxError } = await import('../../errors.ts');
        throw new SandboxError('INVALID_ARGUMENT', `unknown --format ${JSON.stringify(o.format)}: use 'table' or 'json'`);
      }
      const store = await storeFor(cmd);
      let images = await store.list();
      if (repository) images = images.filter((i) => matches(i, repository));
      images.sort((a, b) => (b.created ?? '').localeCompare(a.created ?? '') || repoOf(a).localeCompare(repoOf(b)));
      const id = (i: StoredImage): string => (o.trunc ? i.id.slice(7, 19) : i.id);
      if (o.quiet) {
        for (const x of new Set(images.map(id))) print(x);
        return;
      }
      if (o.format === 'json') {
        for (const i of images) print(JSON.stringify(jsonRow(i, id(i))));
        return;
      }
      const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'PLATFORM', 'SIZE', 'CREATED']];
      const now = Date.now();
      for (const i of images) {
        rows.push([
          i.name?.repository ?? i.repository ?? '<none>',
          i.name?.tag ?? '<none>',
          id(i),
          platformText(i),
          humanSize(i.size),
          i.created ? createdSince(i.created, now) : 'N/A',
        ]);
      }
      process.stdout.write(table(rows));
    });
}

function repoOf(i: StoredImage): string {
  return i.name ? `${i.name.repository}:${i.name.tag}` : '';
}

function matches(i: StoredImage, filter: string): boolean {
  if (!i.name) return i.repository === filter;
  const colon = filter.lastIndexOf(':');
  if (colon > filter.lastIndexOf('/')) return `${i.name.repository}:${i.name.tag}` === filter;
  return i.name.repository === filter;
}

function platformText(i: StoredImage): string {
  const p = i.platform;
  if (!p) return 'multi';
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

function jsonRow(i: StoredImage, id: string): Record<string, unknown> {
  return {
    Repository: i.name?.repository ?? i.repository ?? '<none>',
    Tag: i.name?.tag ?? '<none>',
    ID: id,
    Digest: i.descriptor.digest,
    Platform: platformText(i),
    Size: humanSize(i.size),
    SizeBytes: i.size,
    CreatedAt: i.created ?? null,
    CreatedSince: i.created ? createdSince(i.created, Date.now()) : 'N/A',
  };
}

/** Left-aligned columns, three spaces apart (docker's tabwriter look). */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, k) => (widths[k] = Math.max(widths[k] ?? 0, c.length)));
  return rows.map((r) => r.map((c, k) => (k === r.length - 1 ? c : c.padEnd(widths[k]! + 3))).join('').trimEnd() + '\n').join('');
}

/** Decimal units with three significant digits, as docker prints sizes: 999B, 12.3kB, 1.23MB, 117MB. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${Number(v.toPrecision(3))}${units[u]}`;
}

/** "2 days ago", "About an hour ago": docker's wording for an age. */
export function createdSince(created: string, now: number): string {
  const t = Date.parse(created);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, (now - t) / 1000);
  const m = Math.round(s / 60);
  const h = Math.round(s / 3600);
  let text: string;
  if (s < 1) text = 'Less than a second';
  else if (s < 1.5) text = '1 second';
  else if (s < 60) text = `${Math.round(s)} seconds`;
  else if (m === 1) text = 'About a minute';
  else if (m < 60) text = `${m} minutes`;
  else if (h === 1) text = 'About an hour';
  else if (h < 48) text = `${h} hours`;
  else if (h < 24 * 7 * 2) text = `${Math.floor(h / 24)} days`;
  else if (h < 24 * 30 * 2) text = `${Math.floor(h / 24 / 7)} weeks`;
  else if (h < 24 * 365 * 2) text = `${Math.floor(h / 24 / 30)} months`;
  else text = `${Math.floor(h / 24 / 365)} years`;
  return `${text} ago`;
}
