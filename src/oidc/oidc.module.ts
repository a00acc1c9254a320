import { Module } from '@nestjs/common';
import { ClientAuthentication } from './client-auth.js';
import { ParClient } from './par-client.js';
import { IdTokenValidator } from './id-token.validator.js';
import { ProviderMetadata } from './provider-metadata.js';
import { TokenClient } from './token-client.js';
import { LogoutTokenValidator } from './logout-token.validator.js';
import { UserinfoClient } from './userinfo-client.js';

const providers = [ProviderMetadata, ClientAuthentication, ParClient, TokenClient, IdTokenValidator, LogoutTokenValidator, UserinfoClient];

@Module({ providers, exports: providers })
export class OidcModule {}
