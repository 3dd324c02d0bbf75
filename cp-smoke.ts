import { startControlPlane } from './src/kube/local-cluster/control-plane.ts';
const t = performance.now();
try {
const cp = await startControlPlane({ dir: '/tmp/cp-smoke', apiserverPort: 16443, etcdPort: 12379, etcdPeerPort: 12380 });
console.log('up in', Math.round(performance.now() - t), 'ms', cp.server, cp.kubeconfig);
const { execFileSync } = await import('node:child_process');
console.log(execFileSync('kubectl', ['--kubeconfig', cp.kubeconfig, 'get', 'ns']).toString());
await cp.stop();
} catch (e) { console.log('ERR', e); }
