"""Domain refusals: services raise them, the error middleware renders them."""
from __future__ import annotations

from typing import Any


class Refusal(Exception):
    """A request the service will not carry out; status and reason follow the contract."""

    status = 409
    reason = "conflict"
    message = "The request conflicts with the current state."

    def __init__(self, message: str | None = None, *, data: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.data = data or {}
        self.headers = headers or {}


class Validation(Refusal):
    status, reason, message = 400, "validation", "Some fields are not valid."

    def __init__(self, errors: dict[str, str], message: str | None = None):
        super().__init__(message, data={"errors": errors})
        self.errors = errors


class BadCredentials(Refusal):
    status, reason, message = 401, "bad_credentials", "Wrong username or password."


class WrongOldPassword(Refusal):
    status, reason, message = 400, "bad_credentials", "The current password is wrong."


class Unauthenticated(Refusal):
    status, reason, message = 401, "unauthenticated", "Please log in."


class Forbidden(Refusal):
    status, reason, message = 403, "forbidden", "You may not do that."


class CsrfFailed(Refusal):
    status, reason, message = 403, "csrf", "Missing or wrong CSRF token; reload the page and try again."


class BodyTimeout(Refusal):
    status, reason, message = 408, "timeout", "The request body did not arrive in time."


class Banned(Refusal):
    status, reason, message = 403, "banned", "This account is banned."


class NotFound(Refusal):
    status, reason, message = 404, "not_found", "Not found."


class TooLarge(Refusal):
    status, reason, message = 413, "too_large", "The request body is too large."


class RateLimited(Refusal):
    status, reason, message = 429, "rate_limited", "Too many attempts; try again later."

    def __init__(self, retry_after_s: int, message: str | None = None):
        retry_after_s = max(1, int(retry_after_s))
        super().__init__(message, data={"retry_after": retry_after_s},
                         headers={"Retry-After": str(retry_after_s)})
        self.retry_after_s = retry_after_s


class Unavailable(Refusal):
    """A transient condition (an outage, overload, retries spent): 503 with Retry-After."""

    status, reason, message = 503, "unavailable", "The service is briefly unavailable; try again."

    def __init__(self, message: str | None = None, *, retry_after_s: int = 1):
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after_s)))})


class Overloaded(Unavailable):
    """Too much work queued already (password hashing, live connections): refused at once."""

    message = "The server is busy; try again in a moment."


class UsernameTaken(Refusal):
    reason, message = "username_taken", "That username is taken."


class EmailTaken(Refusal):
    reason, message = "email_taken", "That email is already registered."


class PhoneTaken(Refusal):
    reason, message = "phone_taken", "That phone number is already registered."


class InvalidToken(Refusal):
    status, reason, message = 400, "invalid_token", "The reset link is invalid or has expired."


class TooManyPending(Refusal):
    reason, message = "too_many_pending", "You have too many unpaid orders; pay or cancel one first."


class LimitReached(Refusal):
    reason, message = "limit_reached", "You have reached the limit."


class OutOfStock(Refusal):
    reason, message = "out_of_stock", "Not enough stock."


class BadStatus(Refusal):
    reason, message = "bad_status", "The order is not in a state that allows this."


class Expired(Refusal):
    reason, message = "expired", "The payment window has closed."


class InUse(Refusal):
    reason, message = "in_use", "It is still in use."


class BadImage(Refusal):
    status, reason, message = 400, "bad_image", "The file is not a JPEG, PNG or WebP image."


class SoldOut(Refusal):
    reason, message = "sold_out", "Sold out."


class AlreadyPurchased(Refusal):
    reason, message = "already_purchased", "You have already bought your share of this sale."


class NotStarted(Refusal):
    reason, message = "not_started", "The sale has not started yet."


class Ended(Refusal):
    reason, message = "ended", "The sale has ended."


class HasOrders(Refusal):
    reason, message = "has_orders", "The user has orders; ban the account instead."


class LastAdmin(Refusal):
    reason, message = "last_admin", "The last admin cannot be removed."


class OwnAccount(Refusal):
    reason, message = "self", "You cannot do that to your own account."
