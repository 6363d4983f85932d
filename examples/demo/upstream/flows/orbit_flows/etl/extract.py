"""An async flow with an explicit name."""

import asyncio

from prefect import flow as prefect_flow


@prefect_flow(name="extract-orders", description="Pull the day's orders from the shop API.")
async def extract(day: str = "today", limit: int = 100) -> int:
    await asyncio.sleep(0)
    return min(limit, 42)
