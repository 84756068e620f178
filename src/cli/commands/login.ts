import type { Command } from 'commander';
import { SandboxError } from '../../errors.ts';
import { print, storeFor } from '../program.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function register(program: Command): void {
  program
    .command('login')
    .description('Log in to a registry (credentials checked, then stored in the wasmbox home\'s auth.json, mode 0600)')
    .argument('<registry>', 'REGISTRY[:PORT]')
    .option('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--insecure', 'allow plain HTTP to a registry that is not on loopback')
    .action(async (registry: string, o: { username?: string; password?: string; passwordStdin?: boolean; insecure?: boolean }, cmd: Command) => {
      if (!o.username) throw new SandboxError('INVALID_ARGUMENT', 'login needs --username (-u)');
      if (o.password !== undefined && o.passwordStdin) throw new SandboxError('INVALID_ARGUMENT', '--password and --password-stdin are mutually exclusive');
      const password = o.passwordStdin ? await readStdin() : o.password;
      if (!password) throw new SandboxError('INVALID_ARGUMENT', 'login needs a password (--password-stdin or -p)');
      const [{ RegistryClient }, { staticCredentials }, { saveCredential }, { parseRegistryRef }] = await Promise.all([
        import('../../loader/registry/client.ts'),
        import('../../loader/registry/credentials.ts'),
        import('#host/credentials'),
        import('../../loader/registry/reference.ts'),
      ]);
      const host = parseRegistryRef(`${registry.replace(/^https?:\/\//, '').replace(/\/+$/, '')}/x`).registry;
      const credential = { username: o.username, password };
      const client = new RegistryClient(host, { insecure: o.insecure ?? false, credentials: staticCredentials({ [host]: credential }) });
      await client.ping();
      const store = await storeFor(cmd);
      await saveCredential(store.dir, host, credential);
      print('Login Succeeded');
    });

  program
    .command('logout')
    .description('Remove the stored credentials for a registry')
    .argument('<registry>', 'REGISTRY[:PORT]')
    .action(async (registry: string, _o: unknown, cmd: Command) => {
      const [{ removeCredential }, { parseRegistryRef }] = await Promise.all([import('#host/credentials'), import('../../loader/registry/reference.ts')]);
      const host = parseRegistryRef(`${registry.replace(/^https?:\/\//, '').replace(/\/+$/, '')}/x`).registry;
      const store = await storeFor(cmd);
      if (!(await removeCredential(store.dir, host))) throw new SandboxError('NOT_FOUND', `Not logged in to ${host}`);
      print(`Removing login credentials for ${host}`);
    });
}
