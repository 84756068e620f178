/**
 * /etc/hosts as docker gives a container without a network: base images ship none (docker mounts one
 * in), and without it "localhost" resolves nowhere (glibc's files source finds nothing, DNS has no
 * server). Added to the materialised root filesystem of an image that has no /etc/hosts of its own;
 * the image's layer trees are not changed (copies of / and /etc hold it).
 */
import { newDir, newFile, type DirInode } from '../fs/inode.ts';

export const ETC_HOSTS = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
  '',
].join('\n');

/** (inode numbers of the copies: materialising tells files apart by object, not by number) */
const INO = 0x7fffffff;

/** `root` with /etc/hosts when it has none; the same tree when it has one, or when /etc is not a directory. */
export function withEtcHosts(root: DirInode): DirInode {
  const etc = root.entries.get('etc');
  if (etc !== undefined && (etc.kind !== 'dir' || etc.entries.has('hosts'))) return root;
  const meta = { mode: 0o644, uid: 0, gid: 0, mtimeNs: etc?.mtimeNs ?? root.mtimeNs };
  const newEtc: DirInode = etc ? { ...etc, entries: new Map(etc.entries) } : newDir(INO - 1, { ...meta, mode: 0o755 });
  newEtc.entries.set('hosts', newFile(INO, meta, new TextEncoder().encode(ETC_HOSTS)));
  const newRoot: DirInode = { ...root, entries: new Map(root.entries) };
  newRoot.entries.set('etc', newEtc);
  if (!etc) newRoot.nlink = root.nlink + 1;
  return newRoot;
}
