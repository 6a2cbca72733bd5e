//! An account's pages: its links (list, search, create, edit, delete), each link's short
//! URL to copy, its QR code and its statistics as charts.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shortener_app::{AppError, LinkFilter, LinkPatch, NewLink};
use shortener_domain::Link;
use shortener_domain::visit::Dimension;

use super::session::{Fields, Posted, Signed};
use super::{Chrome, UiError, charts, page, see_other, with_query};
use crate::page::{PageQuery, encode_cursor};
use crate::problem::Slug;
use crate::qr::{self, Format};
use crate::{Error, State};

/// Links on a page of the list.
const PAGE_SIZE: u32 = 20;
/// Days the statistics page shows.
const STATS_DAYS: u32 = 30;
/// How an expiry is shown in its `<input type="datetime-local">` (read back as UTC by
/// [`super::datetime_local`]).
const EXPIRY_FORMAT: &str = "%Y-%m-%dT%H:%M";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/links", web::get().to(list))
        .route("/links", web::post().to(create))
        .route("/links/new", web::get().to(new_form))
        .route("/links/{code}", web::get().to(show))
        .route("/links/{code}/edit", web::get().to(edit_form))
        .route("/links/{code}/edit", web::post().to(edit))
        .route("/links/{code}/delete", web::get().to(delete_form))
        .route("/links/{code}/delete", web::post().to(delete))
        .route("/links/{code}/qr.svg", web::get().to(qr_svg))
        .route("/links/{code}/qr.png", web::get().to(qr_png));
}

/// A link as the pages show it.
pub struct LinkView {
    code: String,
    short_url: String,
    url: String,
    title: Option<String>,
    tags: Vec<String>,
    clicks: i64,
    created: String,
    expires: Option<String>,
    max_visits: Option<u32>,
    visits_left: Option<u64>,
    password_protected: bool,
}

fn minute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl LinkView {
    fn new(state: &State, link: Link) -> LinkView {
        LinkView {
            short_url: state.short_url(link.code.as_str()),
            code: link.code.to_string(),
            url: link.target.to_string(),
            title: link.title.map(|t| t.to_string()),
            tags: link.tags.to_strings(),
            clicks: link.clicks,
            created: minute(link.created_at),
            expires: link.expires_at.map(minute),
            max_visits: link.visit_limit.map(|l| l.max.get()),
            visits_left: link.visit_limit.map(|l| l.left()),
            password_protected: link.password.is_some(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    tag: Option<String>,
    cursor: Option<String>,
    deleted: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/links.html")]
struct ListPage {
    chrome: Chrome,
    links: Vec<LinkView>,
    q: String,
    tag: String,
    searching: bool,
    next: Option<String>,
    paged: bool,
    deleted: Option<String>,
}

fn nonblank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `GET /ui/links?q=&tag=&cursor=`: newest first, filtered as the API filters.
async fn list(
    state: web::Data<State>,
    signed: Signed,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, UiError> {
    let account = signed.account()?;
    let (q, tag) = (nonblank(&query.q), nonblank(&query.tag));
    let filter = LinkFilter::parse(tag, q)?;
    let request = PageQuery {
        limit: Some(PAGE_SIZE),
        cursor: query.cursor.clone().filter(|c| !c.is_empty()),
    }
    .to_request()?;
    let found = state.links.list(account, &filter, request).await?;
    let next = found.next.as_ref().map(|position| {
        let cursor = encode_cursor(position);
        with_query(
            "/ui/links",
            [("q", q), ("tag", tag), ("cursor", Some(cursor.as_str()))],
        )
    });
    let links = found
        .items
        .into_iter()
        .map(|l| LinkView::new(&state, l))
        .collect();
    page(
        StatusCode::OK,
        &ListPage {
            chrome: Chrome::of(&state, &signed, "links").await,
            links,
            q: q.unwrap_or_default().to_owned(),
            tag: tag.unwrap_or_default().to_owned(),
            searching: q.is_some() || tag.is_some(),
            next,
            paged: query.cursor.is_some(),
            deleted: query.deleted.clone(),
        },
    )
}

/// What a link form holds: the values as typed (shown again when they are refused) and
/// the message of each field the use case refused.
#[derive(Debug, Default)]
struct LinkForm {
    url: String,
    code: String,
    title: String,
    tags: String,
    expires_at: String,
    max_visits: String,
    /// The password is never shown again, only whether one was typed.
    password_given: bool,
    remove_password: bool,
    errors: Vec<(&'static str, String)>,
    /// A refusal that is no one field's (quota, subscription).
    general: Option<String>,
}

impl LinkForm {
    fn of(link: &Link) -> LinkForm {
        LinkForm {
            url: link.target.to_string(),
            title: link
                .title
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            tags: link.tags.to_strings().join(", "),
            expires_at: link
                .expires_at
                .map(|at| at.format(EXPIRY_FORMAT).to_string())
                .unwrap_or_default(),
            max_visits: link
                .visit_limit
                .map(|l| l.max.get().to_string())
                .unwrap_or_default(),
            ..LinkForm::default()
        }
    }

    fn posted(fields: &Fields) -> LinkForm {
        let text = |name| fields.get(name).unwrap_or_default().to_owned();
        LinkForm {
            url: text("url"),
            code: text("code"),
            title: text("title"),
            tags: text("tags"),
            expires_at: text("expires_at"),
            max_visits: text("max_visits"),
            password_given: fields.raw("password").is_some(),
            remove_password: fields.checked("remove_password"),
            ..LinkForm::default()
        }
    }

    /// The message for `field`, if it was refused (for the template).
    fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, message)| message.as_str())
    }

    fn refuse(&mut self, field: &'static str, message: String) {
        self.errors.push((field, message));
    }

    fn tags(&self) -> Vec<String> {
        self.tags
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn expires_at(&mut self) -> Option<DateTime<Utc>> {
        if self.expires_at.is_empty() {
            return None;
        }
        match super::datetime_local(&self.expires_at) {
            Some(at) => Some(at),
            None => {
                self.refuse(
                    "expires_at",
                    "Expires at must be a date and time, such as 2027-01-31T18:00 (UTC) (validation)".into(),
                );
                None
            }
        }
    }

    fn max_visits(&mut self) -> Option<i64> {
        if self.max_visits.is_empty() {
            return None;
        }
        match self.max_visits.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.refuse(
                    "max_visits",
                    "Max visits must be a whole number from 1 to 1000000000 (validation)".into(),
                );
                None
            }
        }
    }

    /// Puts the use case's refusal beside the field it is about, with its problem slug,
    /// and answers the status the API would.
    fn refused(&mut self, e: AppError) -> Result<StatusCode, UiError> {
        let error = Error::App(e);
        let (slug, detail) = error.problem();
        if slug.status().is_server_error() || matches!(slug, Slug::RateLimited) {
            return Err(UiError::Page(error));
        }
        let message = format!("{} ({})", super::sentence(&detail), slug.as_str());
        let field = match slug {
            Slug::InvalidUrl => Some("url"),
            Slug::InvalidCode | Slug::CodeTaken => Some("code"),
            Slug::Forbidden if detail.contains("custom code") => Some("code"),
            _ => [
                "expires_at",
                "max_visits",
                "password",
                "title",
                "tag",
                "url",
                "code",
            ]
            .into_iter()
            .find(|name| detail.starts_with(name) || detail.contains(&format!("`{name}`"))),
        };
        match field {
            Some("tag") => self.refuse("tags", message),
            Some(field) => self.refuse(field, message),
            None => self.general = Some(message),
        }
        Ok(slug.status())
    }
}

#[derive(Template)]
#[template(path = "ui/link_form.html")]
struct FormPage {
    chrome: Chrome,
    form: LinkForm,
    /// `None`: a new link; the code being edited otherwise.
    editing: Option<String>,
}

/// `GET /ui/links/new`.
async fn new_form(state: web::Data<State>, signed: Signed) -> Result<HttpResponse, UiError> {
    signed.account()?;
    page(
        StatusCode::OK,
        &FormPage {
            chrome: Chrome::of(&state, &signed, "new").await,
            form: LinkForm::default(),
            editing: None,
        },
    )
}

/// `POST /ui/links`: creates the link as `POST /api/v1/links` would, or shows the form
/// again with what was refused.
async fn create(state: web::Data<State>, posted: Posted) -> Result<HttpResponse, UiError> {
    let account = posted.signed.account()?;
    let mut form = LinkForm::posted(&posted.fields);
    let expires_at = form.expires_at();
    let max_visits = form.max_visits();
    let status = if form.errors.is_empty() {
        let new = NewLink {
            url: form.url.clone(),
            code: Some(form.code.clone()).filter(|c| !c.is_empty()),
            expires_at,
            tags: form.tags(),
            title: Some(form.title.clone()).filter(|t| !t.is_empty()),
            max_visits,
            password: posted.fields.raw("password").map(str::to_owned),
        };
        match state.links.create(account, new).await {
            Ok(link) => return Ok(see_other(&format!("/ui/links/{}?created=1", link.code))),
            Err(e) => form.refused(e)?,
        }
    } else {
        StatusCode::BAD_REQUEST
    };
    page(
        status,
        &FormPage {
            chrome: Chrome::of(&state, &posted.signed, "new").await,
            form,
            editing: None,
        },
    )
}

#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    created: Option<String>,
    saved: Option<String>,
}

/// One breakdown's chart.
struct BreakdownChart {
    label: &'static str,
    svg: String,
}

#[derive(Template)]
#[template(path = "ui/link.html")]
struct LinkPage {
    chrome: Chrome,
    link: LinkView,
    notice: Option<&'static str>,
    days: u32,
    period_clicks: i64,
    period_bots: i64,
    daily: String,
    breakdowns: Vec<BreakdownChart>,
}

fn dimension_label(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Referrer => "Referrers",
        Dimension::Country => "Countries",
        Dimension::Browser => "Browsers",
        Dimension::Os => "Operating systems",
        Dimension::Device => "Devices",
    }
}

/// `GET /ui/links/{code}`: the link, its short URL to copy, its QR code and its last
/// [`STATS_DAYS`] days as charts.
async fn show(
    state: web::Data<State>,
    signed: Signed,
    code: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, UiError> {
    let account = signed.account()?;
    let link = state.links.get(account, &code).await?;
    let stats = state.links.stats(account, &code, STATS_DAYS).await?;
    let breakdowns = stats
        .breakdowns
        .iter()
        .map(|b| {
            let label = dimension_label(b.dimension);
            let mut rows = b.top.clone();
            if b.other > 0 {
                rows.push(("(other)".to_owned(), b.other));
            }
            BreakdownChart {
                label,
                svg: charts::breakdown(label, &rows),
            }
        })
        .collect();
    let notice = if query.created.is_some() {
        Some("Link created.")
    } else if query.saved.is_some() {
        Some("Changes saved.")
    } else {
        None
    };
    page(
        StatusCode::OK,
        &LinkPage {
            chrome: Chrome::of(&state, &signed, "links").await,
            link: LinkView::new(&state, link),
            notice,
            days: STATS_DAYS,
            period_clicks: stats.daily.iter().map(|d| d.clicks).sum(),
            period_bots: stats.bots,
            daily: charts::daily(&stats.daily),
            breakdowns,
        },
    )
}

/// `GET /ui/links/{code}/edit`.
async fn edit_form(
    state: web::Data<State>,
    signed: Signed,
    code: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let account = signed.account()?;
    let link = state.links.get(account, &code).await?;
    page(
        StatusCode::OK,
        &FormPage {
            chrome: Chrome::of(&state, &signed, "links").await,
            form: LinkForm::of(&link),
            editing: Some(link.code.to_string()),
        },
    )
}

/// `POST /ui/links/{code}/edit`: every field as the form shows it replaces the link's (a
/// field left empty removes its value); the password changes only when one is typed or
/// its removal ticked.
async fn edit(
    state: web::Data<State>,
    posted: Posted,
    code: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let account = posted.signed.account()?;
    let mut form = LinkForm::posted(&posted.fields);
    let expires_at = form.expires_at();
    let max_visits = form.max_visits();
    let status = if form.errors.is_empty() {
        let password = match (form.remove_password, posted.fields.raw("password")) {
            (true, _) => Some(None),
            (false, Some(p)) => Some(Some(p.to_owned())),
            (false, None) => None,
        };
        let patch = LinkPatch {
            url: Some(form.url.clone()),
            expires_at: Some(expires_at),
            tags: Some(form.tags()),
            title: Some(Some(form.title.clone()).filter(|t| !t.is_empty())),
            max_visits: Some(max_visits),
            password,
        };
        match state.links.update(account, &code, patch).await {
            Ok(link) => return Ok(see_other(&format!("/ui/links/{}?saved=1", link.code))),
            Err(AppError::NotFound) => return Err(AppError::NotFound.into()),
            Err(e) => form.refused(e)?,
        }
    } else {
        StatusCode::BAD_REQUEST
    };
    page(
        status,
        &FormPage {
            chrome: Chrome::of(&state, &posted.signed, "links").await,
            form,
            editing: Some(code.into_inner()),
        },
    )
}

#[derive(Template)]
#[template(path = "ui/link_delete.html")]
struct DeletePage {
    chrome: Chrome,
    link: LinkView,
}

/// `GET /ui/links/{code}/delete`: asks first (works without JavaScript).
async fn delete_form(
    state: web::Data<State>,
    signed: Signed,
    code: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let account = signed.account()?;
    let link = LinkView::new(&state, state.links.get(account, &code).await?);
    page(
        StatusCode::OK,
        &DeletePage {
            chrome: Chrome::of(&state, &signed, "links").await,
            link,
        },
    )
}

/// `POST /ui/links/{code}/delete`.
async fn delete(
    state: web::Data<State>,
    posted: Posted,
    code: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let account = posted.signed.account()?;
    state.links.delete(account, &code).await?;
    Ok(see_other(&with_query(
        "/ui/links",
        [("deleted", Some(code.as_str()))],
    )))
}

async fn qr(
    state: &State,
    signed: &Signed,
    code: &str,
    format: Format,
    file: &str,
) -> Result<HttpResponse, UiError> {
    let account = signed.account()?;
    let link = state.links.get(account, code).await?;
    let short_url = state.short_url(link.code.as_str());
    let body = qr::render_off_the_workers(short_url, format).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, format.content_type()))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        ))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}-qr.{file}\"", link.code),
        ))
        .body(body))
}

/// `GET /ui/links/{code}/qr.svg`: the picture on the page, and its download.
async fn qr_svg(
    state: web::Data<State>,
    signed: Signed,
    code: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    qr(&state, &signed, &code, Format::Svg, "svg").await
}

/// `GET /ui/links/{code}/qr.png`: 1024 pixels a side, for print.
async fn qr_png(
    state: web::Data<State>,
    signed: Signed,
    code: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    qr(&state, &signed, &code, Format::Png { size: 1024 }, "png").await
}
