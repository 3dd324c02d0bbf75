// A real S3-protocol server for tests: versitygw (Apache-2.0), built once from Go modules at a
// pinned version and cached in ~/.cache/kinfer/bin. Listens on loopback only.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { cacheDir } from '../../src/local/cache-dir.ts';

export const VERSITYGW_VERSION = 'v1.8.0';

/** The cached binary, built with `go install` when missing (about 75 s on 2 cores). */
export function versitygwBinary(): string {
  const binDir = join(cacheDir(), 'bin');
  const binary = join(binDir, `versitygw-${VERSITYGW_VERSION}`);
  if (existsSync(binary)) return binary;
  mkdirSync(binDir, { recursive: true });
  // GOBIN for this one build, beside the binary: the rename below stays on one file system, and the
  // folder goes when the build is done (it was left in the system's /tmp before).
  const gobin = mkdtempSync(join(binDir, '.build-'));
  process.stderr.write(`building versitygw ${VERSITYGW_VERSION} from Go modules (once; cached in ${binDir})\n`);
  try {
    execFileSync('go', ['install', '-ldflags', '-s -w', `github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}`], {
      env: { ...process.env, GOBIN: gobin, CGO_ENABLED: '0', GOFLAGS: '-modcacherw' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  } catch (err) {
    rmSync(gobin, { recursive: true, force: true });
    throw new Error(`cannot build versitygw (Go 1.25+ and the Go module proxy are needed): ${(err as Error).message}`);
  }
  renameSync(join(gobin, 'versitygw'), binary);
  rmSync(gobin, { recursive: true, force: true });
  return binary;
}

export interface S3Server {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  stop(): Promise<void>;
}

export async function startS3Server(opts: {
  port: number;
  dataDir: string;
  buckets: string[];
  accessKeyId?: string;
  secretAccessKey?: string;
}): Promise<S3Server> {
  const accessKeyId = opts.accessKeyId ?? 'kinfer-test';
  const secretAccessKey = opts.secretAccessKey ?? 'kinfer-test-secret';
  mkdirSync(opts.dataDir, { recursive: true });
  const child: ChildProcess = spawn(versitygwBinary(), ['--port', `127.0.0.1:${opts.port}`, 'posix', opts.dataDir], {
    env: { PATH: process.env.PATH, ROOT_ACCESS_KEY: accessKeyId, ROOT_SECRET_KEY: secretAccessKey },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const endpoint = `http://127.0.0.1:${opts.port}`;
  const region = 'us-east-1';
  const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`versitygw exited with ${child.exitCode}: ${stderr}`);
    try {
      await client.send(new ListBucketsCommand({}));
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`versitygw did not start: ${(err as Error).message} ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  for (const bucket of opts.buckets) await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    region,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
