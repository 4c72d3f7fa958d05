import { Breaker } from '../../lib/deliver/breaker';
import { Broadcaster } from '../../lib/deliver/broadcaster';
import { Endpoint } from '../../lib/deliver/endpoint';
import { Filter } from '../../lib/deliver/filter';
import { HttpSink } from '../../lib/deliver/http-sink';
import { Queue } from '../../lib/deliver/queue';
import { HeldEvents } from '../../lib/emit/held-events';
import { RetryingSink } from '../../lib/deliver/retrying-sink';
import { RecordingSink } from '../helpers/sinks';
import { describeSinkContract } from '../helpers/sink-contract';

// Every sink of the pipeline, built the way the endpoint builds it.
describeSinkContract('Broadcaster', () => new Broadcaster([new RecordingSink(), new RecordingSink()]));
describeSinkContract('Queue', () => new Queue(new RecordingSink(), { drainTimeoutMs: 10 }));
describeSinkContract('RetryingSink', () => new RetryingSink(new RecordingSink(), new Breaker()));
describeSinkContract('Filter', () => new Filter(new RecordingSink(), { ignore: { actions: ['pull'] } }));
describeSinkContract('HttpSink', () => new HttpSink('http://127.0.0.1:9/'));
describeSinkContract('Endpoint', () => new Endpoint({ name: 'contract', url: 'http://127.0.0.1:9/' }, { drainTimeoutMs: 10 }));
describeSinkContract('HeldEvents', () => new HeldEvents(new RecordingSink(), () => undefined));
describeSinkContract('RecordingSink (test double)', () => new RecordingSink());
