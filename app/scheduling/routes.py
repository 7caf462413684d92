from flask import current_app, g
from flask_smorest import Blueprint

from app.auth.routes import login_required
from app.scheduling import queries, service
from app.scheduling.schemas import JobPageSchema, JobQueryArgsSchema, JobSchema
from app.schemas import paginate

blp = Blueprint("jobs", __name__, description="Your scheduled work: what is due, late or failed")


@blp.get("")
@login_required
@blp.arguments(JobQueryArgsSchema(), location="query")
@blp.response(200, JobPageSchema)
def list_jobs(args: dict):
    """List your jobs, latest due first, filtered by state, kind or subject."""
    page, per_page = args.pop("page"), args.pop("per_page")
    query = queries.jobs_query(owner_id=g.user.id, **args)
    cap = current_app.config["JOBS_TOTAL_CAP"]
    return paginate(query, page=page, per_page=per_page, count_up_to=cap)


@blp.get("/<int:job_id>")
@login_required
@blp.response(200, JobSchema)
def get_job(job_id: int):
    """Show one of your jobs, with its lateness once started."""
    return queries.get_job(job_id=job_id, user_id=g.user.id)


@blp.delete("/<int:job_id>")
@login_required
@blp.response(200, JobSchema)
def cancel_job(job_id: int):
    """Cancel a job that has not finished."""
    return service.cancel_job(job_id=job_id, user_id=g.user.id)
