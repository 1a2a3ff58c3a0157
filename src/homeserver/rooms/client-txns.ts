/**
 * Client transaction IDs the room engine remembers in memory: which recent
 * event a (user, device, txnId) produced, for idempotent sends without a
 * storage read, and the reverse, for unsigned.transaction_id in /sync. The
 * durable record is storage's transactionIds table, written in the event's
 * own write (persist.ts); this is a bounded cache in front of it, so after a
 * restart older sends have no transaction_id, as in Synapse.
 */
import type { ClientTxn } from './types.js';

export interface TxnKey extends ClientTxn {
  userId: string;
}

export class ClientTxnMemory {
  /** eventId -> the client transaction that sent it (recent sends only). */
  private readonly sentBy = new Map<string, TxnKey>();
  /** JSON [user, device, txnId] -> eventId, the same entries the other way round. */
  private readonly byTxn = new Map<string, string>();

  constructor(private readonly capacity: number) {}

  /** The event a transaction produced, if remembered. */
  eventFor(txn: TxnKey | undefined): string | undefined {
    return txn && this.byTxn.get(keyOf(txn));
  }

  transactionIdFor(eventId: string, userId: string, deviceId: string): string | undefined {
    const sent = this.sentBy.get(eventId);
    return sent && sent.userId === userId && sent.deviceId === deviceId ? sent.txnId : undefined;
  }

  remember(eventId: string, txn: TxnKey): void {
    this.sentBy.set(eventId, txn);
    this.byTxn.set(keyOf(txn), eventId);
    if (this.sentBy.size > this.capacity) {
      const [oldest, sent] = this.sentBy.entries().next().value as [string, TxnKey];
      this.sentBy.delete(oldest);
      this.byTxn.delete(keyOf(sent));
    }
  }
}

function keyOf(txn: TxnKey): string {
  return JSON.stringify([txn.userId, txn.deviceId, txn.txnId]);
}
