// Jest's node environment, with an ordinary global object. Jest 30 makes the test context's global
// a Proxy (for its globals cleanup), and Node's vm makes every global lookup of a contextified
// object go through interceptors: `Math.imul` in a loop ran ~300x slower in a test than in Node
// (3 M calls: 1.4 s against 4.6 ms), and with it everything in-process that reads a global in a
// hot loop (the sample generators, pixel and metric code). `vm.constants.DONT_CONTEXTIFY` (Node
// 22.8+) gives the context an ordinary global instead; the environment is otherwise Jest's own.
import vm from 'node:vm';
import { TestEnvironment } from 'jest-environment-node';

export default class FastGlobalsEnvironment extends TestEnvironment {
  constructor(config, context) {
    const createContext = vm.createContext;
    vm.createContext = () => createContext(vm.constants.DONT_CONTEXTIFY);
    try {
      super(config, context);
    } finally {
      vm.createContext = createContext;
    }
  }
}
