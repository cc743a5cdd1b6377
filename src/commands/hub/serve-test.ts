import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { FakeHub, buildPopulation } from '../../hub/fake-hub.js';

export default class HubServeTest extends BaseCommand<typeof HubServeTest> {
  static override summary = 'Serve the local test Hub (a zoo base and its derivatives, with faults) on 127.0.0.1 until stopped.';
  static override description =
    'The server the tests run `audit` against (src/hub/fake-hub.ts): zoo/alpha-base and 66 declared derivatives (ONNX, safetensors, a LoRA adapter, GGUF; nested to depth 3) and one repo per fault (429, 500, a reset connection, a wrong sha256, gated, private, deleted, hostile names, a size over any budget). Try `modelprint audit zoo/alpha-base --endpoint <url> --depth 3` against it.';
  static override examples = ['<%= config.bin %> hub serve-test --port 8080', '<%= config.bin %> hub serve-test --no-faults'];
  static override flags = {
    port: Flags.integer({ description: 'Port on 127.0.0.1 (0: any free one).', default: 0, min: 0, max: 65535 }),
    dir: Flags.string({ description: 'Work folder for the generated models (default: a temp folder, removed on exit).' }),
    faults: Flags.boolean({ description: 'Include the fault repos.', default: true, allowNo: true }),
    token: Flags.string({ description: 'The one Bearer token the server accepts (default: any).' }),
  };

  async run(): Promise<{ url: string; base: string; derivatives: number }> {
    const f = this.flags;
    const work = f.dir ? path.resolve(f.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'modelprint-test-hub-'));
    const hub = new FakeHub();
    if (f.token) hub.token = f.token;
    const fixtures = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..', 'test', 'fixtures', 'hf');
    const pop = await buildPopulation(hub, work, { faults: f.faults, hfFixtures: fs.existsSync(fixtures) ? fixtures : undefined });
    const url = await hub.start(f.port);
    this.logger.info(`test Hub on ${url}: ${pop.base} and ${pop.derivatives.length} derivatives; Ctrl-C stops it`);
    // One line on stdout with the URL, also without --json, so scripts can read it.
    process.stdout.write(`${this.jsonEnabled() ? JSON.stringify({ url, base: pop.base, derivatives: pop.derivatives.length }) : url}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await hub.close();
    if (!f.dir) fs.rmSync(work, { recursive: true, force: true });
    process.exit(0);
  }
}
