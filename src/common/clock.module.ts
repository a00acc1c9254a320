import { Global, Module, type DynamicModule } from '@nestjs/common';
import { CLOCK, systemClock, type Clock } from './clock.js';

/**
 * The one clock, injectable everywhere as CLOCK. The process clock by default; in-process tests
 * pass a clock they can move (createGateway's `clock` option), so they age sessions and tokens
 * through it instead of rewriting store records. Unit specs pass their own to the class.
 */
@Global()
@Module({})
export class ClockModule {
  static forRoot(clock: Clock = systemClock): DynamicModule {
    return { module: ClockModule, providers: [{ provide: CLOCK, useValue: clock }], exports: [CLOCK] };
  }
}
