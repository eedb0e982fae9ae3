"""Every Redis key name. A sale's keys share one hash tag so its Lua script touches one slot."""
from __future__ import annotations


class Keys:
    """Key names under a prefix (empty in production; tests and the bench use their own)."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix

    # accounts
    def user_auth(self, user_id: int) -> str:
        """hash: epoch, role, active, addrs (the user's address ids, comma-separated, once loaded)
        — checked on each request instead of MySQL."""
        return f"{self.prefix}u:{{{user_id}}}:auth"

    def login_fail_user(self, account: str) -> str:
        """failed logins of one account from anywhere (the far higher cap); `account` is canonical:
        `id:<user id>` or `name:<normalized name>` for a name without an account."""
        return f"{self.prefix}rl:login:u:{account}"

    def login_fail_user_ip(self, account: str, ip: str) -> str:
        """failed logins of one account from one client address (the lock-out a guesser meets)."""
        return f"{self.prefix}rl:login:uip:{account}:{ip}"

    def login_fail_ip(self, ip: str) -> str:
        return f"{self.prefix}rl:login:ip:{ip}"

    def register_ip(self, ip: str) -> str:
        return f"{self.prefix}rl:register:ip:{ip}"

    def reset_request_ip(self, ip: str) -> str:
        return f"{self.prefix}rl:reset:ip:{ip}"

    # the catalog
    def catalog_revision(self) -> str:
        """counter: bumped by every change to a sale or goods row (services/catalog_revision.py)."""
        return f"{self.prefix}catalog:rev"

    # flash sales: everything of sale N under the tag {sale:N}; a sale split over stock shards
    # keeps shard 0 there and shard k under {sale:N:k} (one slot per shard, see admission.py)
    def sale_tag(self, sale_id: int, shard: int = 0) -> str:
        if shard:
            return f"{self.prefix}fs:{{sale:{sale_id}:{shard}}}"
        return f"{self.prefix}fs:{{sale:{sale_id}}}"

    def sale_stock(self, sale_id: int, shard: int = 0) -> str:
        return self.sale_tag(sale_id, shard) + ":stock"

    def sale_buyers(self, sale_id: int, shard: int = 0) -> str:
        return self.sale_tag(sale_id, shard) + ":buyers"

    def sale_window(self, sale_id: int, shard: int = 0) -> str:
        return self.sale_tag(sale_id, shard) + ":window"

    def sale_stream(self, sale_id: int, shard: int = 0) -> str:
        return self.sale_tag(sale_id, shard) + ":stream"

    def sale_results(self, sale_id: int, shard: int = 0) -> str:
        return self.sale_tag(sale_id, shard) + ":results"

    def sale_user_request(self, sale_id: int, shard: int = 0) -> str:
        return self.sale_tag(sale_id, shard) + ":user_req"

    def sale_dead(self, sale_id: int, shard: int = 0) -> str:
        return self.sale_tag(sale_id, shard) + ":dead"

    def sale_stats(self, sale_id: int, shard: int = 0) -> str:
        """hash: admission outcome -> count (admitted, sold_out, already_purchased, ...)."""
        return self.sale_tag(sale_id, shard) + ":stats"

    def sale_released(self, sale_id: int, shard: int = 0) -> str:
        """set of request ids whose unit was given back: makes a failure's give-back happen once."""
        return self.sale_tag(sale_id, shard) + ":released"

    def sale_purchase_rate(self, sale_id: int, user_id: int | str, shard: int = 0) -> str:
        return f"{self.sale_tag(sale_id, shard)}:rate:{user_id}"

    def sale_rebuild_lock(self, sale_id: int) -> str:
        return self.sale_tag(sale_id) + ":rebuild_lock"

    def active_sales(self) -> str:
        """set of sale ids whose streams consumers follow."""
        return f"{self.prefix}fs:active"

    def stock_channel(self) -> str:
        """pub/sub channel: a sale's stock came back, clear local sold-out flags."""
        return f"{self.prefix}fs:stock_returned"

    def outcomes_channel(self) -> str:
        """pub/sub channel: one notice per committed batch (sale, request ids and outcomes)."""
        return f"{self.prefix}fs:outcomes"

    def consumer_group(self) -> str:
        return "orders"


def home_shard(user_id: int | str, shards: int) -> int:
    """The stock shard that keeps a buyer's per-user state (buyers, latest request, results,
    rate) in a sale split over `shards`: a stable function of the user id, not slot hashing."""
    return int(user_id) % shards if shards > 1 else 0
