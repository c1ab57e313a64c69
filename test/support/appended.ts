/**
 * Events ever appended, all tenants together: the gauge pollgate_events_appended of /metrics
 * (admin key). /readyz, which anyone may call, does not tell the volume.
 */
export async function appendedTotal(baseUrl: string, adminKey: string): Promise<number> {
  const res = await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${text.slice(0, 200)}`);
  const line = /^pollgate_events_appended (\d+)$/m.exec(text);
  if (!line) throw new Error('/metrics has no pollgate_events_appended');
  return Number(line[1]);
}
