//! The operators' status page at `/`: every agent with its status, health, last heartbeat,
//! restarts and resource use against its contract, and a live tail of a topic prefix.
//!
//! The page is rendered on the server (usable with JavaScript off; reload it to refresh);
//! a small script refreshes the table from `/status.json` every few seconds and runs the
//! live tail over `/ws`. Without a token (auth on) the page is a login form, which sets
//! the `Bearer` cookie.

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::core::{Map, Value};
use crate::services::control::AgentRecord;
use crate::web::error::WebError;
use crate::web::state::{VUI, WebState};

/// One row of the table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct AgentRow {
    pub(crate) identity: String,
    pub(crate) name: String,
    pub(crate) status: String,
    pub(crate) health: String,
    pub(crate) last_heartbeat: String,
    pub(crate) restarts: u32,
    pub(crate) cpu: String,
    pub(crate) rss: String,
    pub(crate) reserved: String,
}

/// Every agent: the installed ones (from `control`) and every other connected peer.
pub(crate) async fn agent_rows(state: &WebState) -> Vec<AgentRow> {
    let records: Vec<AgentRecord> = match state
        .call(
            crate::services::control::IDENTITY,
            "status_agents",
            Default::default(),
        )
        .await
    {
        Ok(v) => crate::core::from_value(v).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let health = state
        .call(
            crate::services::health::IDENTITY,
            "get_platform_health",
            Default::default(),
        )
        .await
        .unwrap_or(Value::Null);
    let peer_health = |id: &str| -> (String, String) {
        let h = health.get(id);
        let connected = h.and_then(|h| h.get("connected")).and_then(Value::as_bool) == Some(true);
        let status = h
            .filter(|_| connected)
            .and_then(|h| h.get("status"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let last = h
            .and_then(|h| h.get("last_heartbeat"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        (status, last)
    };
    let mut rows: Vec<AgentRow> = records
        .iter()
        .map(|r| {
            let (h, last) = peer_health(&r.identity);
            let [cpu, rss, _, reserved] = r.resource_cells();
            AgentRow {
                identity: r.identity.clone(),
                name: r.name.clone(),
                status: r.status_text(),
                health: r.health.clone().unwrap_or(h),
                last_heartbeat: last,
                restarts: state.platform.restart_count(&r.identity),
                cpu,
                rss,
                reserved,
            }
        })
        .collect();
    for peer in state.platform.peers() {
        if rows.iter().any(|r| r.identity == peer.as_str()) {
            continue;
        }
        let (h, last) = peer_health(peer.as_str());
        rows.push(AgentRow {
            identity: peer.to_string(),
            name: String::new(),
            status: "connected".into(),
            health: h,
            last_heartbeat: last,
            restarts: state.platform.restart_count(peer.as_str()),
            cpu: String::new(),
            rss: String::new(),
            reserved: String::new(),
        });
    }
    rows.sort_by(|a, b| a.identity.cmp(&b.identity));
    rows
}

/// `GET /status.json`: the table's rows.
pub(crate) async fn status_json(
    state: web::Data<WebState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    state.require(&req, VUI)?;
    let rows = agent_rows(&state).await;
    let mut m = Map::new();
    m.insert(
        "instance-name".into(),
        Value::from(state.platform.instance_name()),
    );
    m.insert(
        "agents".into(),
        crate::core::to_value(&rows).unwrap_or(Value::Null),
    );
    Ok(HttpResponse::Ok().json(m))
}

/// `GET /`.
pub(crate) async fn page(state: web::Data<WebState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    match state.require(&req, VUI) {
        Ok(claims) => {
            let rows = agent_rows(&state).await;
            let html = render(
                state.platform.instance_name(),
                &claims.sub,
                state.auth_on(),
                &rows,
            );
            Ok(HttpResponse::Ok()
                .content_type(ContentType::html())
                .insert_header(("Cache-Control", "no-store"))
                .body(html))
        }
        Err(WebError::Unauthorized(_)) => Ok(HttpResponse::Ok()
            .content_type(ContentType::html())
            .body(login_page(None))),
        Err(e) => Err(e),
    }
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
th{background:#f0f0f0}.GOOD{color:#070}.BAD{color:#b00}#tail{font-family:monospace;max-height:20em;overflow:auto}";

/// The login form.
pub(crate) fn login_page(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"BAD\" id=\"login-error\">{}</p>", esc(e)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>VOLTTRON login</title>\
<style>{STYLE}</style></head><body><h1>VOLTTRON platform</h1>{error}\
<form method=\"post\" action=\"/login\" id=\"login\">\
<p><label>User <input name=\"username\" id=\"username\" autocomplete=\"username\" required></label></p>\
<p><label>Password <input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
<p><button type=\"submit\" id=\"submit\">Log in</button></p></form></body></html>"
    )
}

fn render(instance: &str, user: &str, auth: bool, rows: &[AgentRow]) -> String {
    let mut table = String::new();
    for r in rows {
        table.push_str(&format!(
            "<tr data-identity=\"{id}\"><td class=\"identity\">{id}</td><td>{name}</td><td class=\"status\">{status}</td>\
<td class=\"health {health}\">{health}</td><td>{last}</td><td class=\"restarts\">{restarts}</td><td>{cpu}</td><td>{rss}</td><td>{reserved}</td></tr>",
            id = esc(&r.identity),
            name = esc(&r.name),
            status = esc(&r.status),
            health = esc(&r.health),
            last = esc(&r.last_heartbeat),
            restarts = r.restarts,
            cpu = esc(&r.cpu),
            rss = esc(&r.rss),
            reserved = esc(&r.reserved),
        ));
    }
    let logout = if auth {
        "<form method=\"post\" action=\"/logout\" style=\"display:inline\"><button>Log out</button></form>"
    } else {
        ""
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>VOLTTRON {instance}</title>\
<style>{STYLE}</style></head><body><h1>VOLTTRON platform <span id=\"instance\">{instance}</span></h1>\
<div>Logged in as <b>{user}</b> {logout}</div>\
<h2>Agents</h2><table id=\"agents\"><thead><tr><th>Identity</th><th>Agent</th><th>Status</th><th>Health</th>\
<th>Last heartbeat</th><th>Restarts</th><th>CPU</th><th>RSS</th><th>Reserved</th></tr></thead><tbody>{table}</tbody></table>\
<h2>Live tail</h2><noscript><p>The live tail needs JavaScript.</p></noscript>\
<form id=\"tail-form\"><label>Topic prefix <input id=\"prefix\" value=\"\"></label> <button id=\"tail-start\">Follow</button> <span id=\"tail-state\"></span></form>\
<ul id=\"tail\"></ul><script>{SCRIPT}</script></body></html>",
        instance = esc(instance),
        user = esc(user),
    )
}

/// Refreshes the table, runs the live tail.
const SCRIPT: &str = r#"
(function(){
  function esc(s){return String(s).replace(/[&<>"']/g,function(c){return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c];});}
  function refresh(){
    fetch('/status.json',{credentials:'same-origin'}).then(function(r){return r.ok?r.json():null;}).then(function(s){
      if(!s)return;
      var body=document.querySelector('#agents tbody');
      body.innerHTML=s.agents.map(function(r){
        return '<tr data-identity="'+esc(r.identity)+'"><td class="identity">'+esc(r.identity)+'</td><td>'+esc(r.name)+
          '</td><td class="status">'+esc(r.status)+'</td><td class="health '+esc(r.health)+'">'+esc(r.health)+'</td><td>'+
          esc(r.last_heartbeat)+'</td><td class="restarts">'+r.restarts+'</td><td>'+esc(r.cpu)+'</td><td>'+esc(r.rss)+'</td><td>'+esc(r.reserved)+'</td></tr>';
      }).join('');
    }).catch(function(){});
  }
  setInterval(refresh,5000);
  var ws=null;
  document.getElementById('tail-form').addEventListener('submit',function(e){
    e.preventDefault();
    var prefix=document.getElementById('prefix').value;
    var state=document.getElementById('tail-state');
    if(ws){ws.close();}
    ws=new WebSocket((location.protocol==='https:'?'wss://':'ws://')+location.host+'/ws');
    ws.onopen=function(){ws.send(JSON.stringify({subscribe:prefix}));};
    ws.onmessage=function(m){
      var d=JSON.parse(m.data);
      if(d.subscribed!==undefined){state.textContent='following '+d.subscribed;return;}
      if(d.error){state.textContent='error: '+d.error;return;}
      if(d.topic===undefined)return;
      var li=document.createElement('li');
      li.className='publication';
      li.textContent=d.topic+' '+JSON.stringify(d.message);
      var tail=document.getElementById('tail');
      tail.insertBefore(li,tail.firstChild);
      while(tail.children.length>200){tail.removeChild(tail.lastChild);}
    };
    ws.onclose=function(){state.textContent=state.textContent+' (closed)';};
  });
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
        let html = render(
            "i<1>",
            "ann",
            true,
            &[AgentRow {
                identity: "hvac".into(),
                name: "<b>".into(),
                status: "running [1]".into(),
                health: "GOOD".into(),
                last_heartbeat: String::new(),
                restarts: 2,
                cpu: String::new(),
                rss: String::new(),
                reserved: String::new(),
            }],
        );
        assert!(html.contains("i&lt;1&gt;"));
        assert!(html.contains("&lt;b&gt;"));
        assert!(html.contains("data-identity=\"hvac\""));
    }
}
