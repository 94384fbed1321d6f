import { fakePairs, tcpPairs } from './endpoint-pairs.ts';
import { spliceSuite } from './splice-contract.ts';

spliceSuite(fakePairs());
spliceSuite(tcpPairs());
