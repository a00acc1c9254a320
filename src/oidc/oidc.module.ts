import { Module } from '@nestjs/common';
import { IdTokenValidator } from './id-token.validator.js';
import { ProviderMetadata } from './provider-metadata.js';
import { TokenClient } from './token-client.js';

@Module({ providers: [ProviderMetadata, TokenClient, IdTokenValidator], exports: [ProviderMetadata, TokenClient, IdTokenValidator] })
export class OidcModule {}
