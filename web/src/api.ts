// The dashboard's only way to kpid: the MetricsService client generated from proto/kpi/v1
// (protoc-gen-es) over Connect's grpc-web transport, on the origin that served the page.
// The API key, when the server needs one, lives in sessionStorage: gone with the tab.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { MetricsService } from "./gen/kpi/v1/metrics_pb";

const KEY_STORAGE = "kpid.apiKey";

export function storedApiKey(): string {
  return sessionStorage.getItem(KEY_STORAGE) ?? "";
}

export function storeApiKey(key: string): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

const bearer: Interceptor = (next) => async (request) => {
  const key = storedApiKey();
  if (key) request.header.set("authorization", `Bearer ${key}`);
  return next(request);
};

export const metrics = createClient(
  MetricsService,
  createGrpcWebTransport({ baseUrl: location.origin, interceptors: [bearer] }),
);

/** A gRPC status code's canonical name: 16 → "UNAUTHENTICATED". */
export function codeName(code: number): string {
  const name = Code[code] as string | undefined;
  if (code === 0) return "OK";
  if (!name) return `CODE_${code}`;
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** An RPC failure as the status and message the server sent. */
export interface RpcFailure {
  code: string;
  message: string;
}

export function rpcFailure(error: unknown): RpcFailure {
  const connect = ConnectError.from(error);
  return { code: codeName(connect.code), message: connect.rawMessage };
}

export function isUnauthenticated(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Unauthenticated;
}
