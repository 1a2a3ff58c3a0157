"""matrix-nio (Debian's python3-matrix-nio) as an independent second client.

Usage: nio_client.py BASE_URL USER_ID PASSWORD ROOM_ID
Logs in with a password, does an initial sync, joins ROOM_ID, sends a message,
then syncs until it receives a message from someone else ("hello nio"), and
prints one JSON line describing what it saw. nio uses the r0 paths and puts the
access token in the query string, which is exactly what this test exercises.
"""
import asyncio
import json
import sys

from nio import AsyncClient, JoinResponse, LoginResponse, RoomMessageText, RoomSendResponse, SyncResponse


async def main() -> int:
    base_url, user_id, password, room_id = sys.argv[1:5]
    client = AsyncClient(base_url, user_id)
    result = {}
    try:
        login = await client.login(password, device_name="nio test")
        if not isinstance(login, LoginResponse):
            print(json.dumps({"error": f"login failed: {login}"}))
            return 1
        result["device_id"] = login.device_id
        first = await client.sync(timeout=0)
        if not isinstance(first, SyncResponse):
            print(json.dumps({"error": f"sync failed: {first}"}))
            return 1
        joined = await client.join(room_id)
        if not isinstance(joined, JoinResponse):
            print(json.dumps({"error": f"join failed: {joined}"}))
            return 1
        sent = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hello from nio"})
        if not isinstance(sent, RoomSendResponse):
            print(json.dumps({"error": f"send failed: {sent}"}))
            return 1
        result["sent_event_id"] = sent.event_id
        received = []
        for _ in range(40):
            response = await client.sync(timeout=500, since=client.next_batch)
            if not isinstance(response, SyncResponse):
                print(json.dumps({"error": f"sync failed: {response}"}))
                return 1
            for room in response.rooms.join.values():
                for event in room.timeline.events:
                    if isinstance(event, RoomMessageText) and event.sender != user_id:
                        received.append(event.body)
            if "hello nio" in received:
                break
        result["received"] = received
        print(json.dumps(result))
        return 0 if "hello nio" in received else 2
    finally:
        await client.close()


sys.exit(asyncio.run(main()))
