import { Module } from '@nestjs/common';
import { ProviderMetadata } from './provider-metadata.js';

@Module({ providers: [ProviderMetadata], exports: [ProviderMetadata] })
export class OidcModule {}
