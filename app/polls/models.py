from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint, and_
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from app.auth.models import User
from app.database import UTCDateTime, utcnow
from app.extensions import db


class Poll(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    close_date: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    results: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    results_computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner: Mapped[User] = relationship(lazy="selectin")
    options: Mapped[list["Option"]] = relationship(
        back_populates="poll",
        order_by="Option.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )

    @property
    def owner_name(self) -> str:
        return self.owner.username

    @hybrid_method
    def is_open(self, now: datetime) -> bool:
        """Open for votes: not closed, and its close date not reached even if the job is late."""
        return self.closed_at is None and now < self.close_date

    @is_open.inplace.expression
    @classmethod
    def _is_open(cls, now: datetime) -> ColumnElement[bool]:
        return and_(cls.closed_at.is_(None), cls.close_date > now)


class Option(db.Model):
    __table_args__ = (
        UniqueConstraint("poll_id", "name", name="uq_option_poll_name"),
        CheckConstraint("votes >= 0", name="ck_option_votes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("poll.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int]
    votes: Mapped[int] = mapped_column(default=0)

    poll: Mapped[Poll] = relationship(back_populates="options")


class Vote(db.Model):
    __table_args__ = (UniqueConstraint("poll_id", "user_id", name="uq_vote_poll_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("poll.id", ondelete="CASCADE"))
    option_id: Mapped[int] = mapped_column(ForeignKey("option.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
