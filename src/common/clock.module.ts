import { Global, Module } from '@nestjs/common';
import { CLOCK, systemClock } from './clock.js';

/** The one clock, injectable everywhere as CLOCK; unit specs pass their own. */
@Global()
@Module({ providers: [{ provide: CLOCK, useValue: systemClock }], exports: [CLOCK] })
export class ClockModule {}
